"""Encryption in transit with certificates made by the test suite (tests/tls_support.py): HTTPS served by
`rulesvc serve` itself (TLS 1.2 and 1.3 answered, TLS 1.1 refused), PostgreSQL with sslmode=verify-full
against the configured CA, Redis over TLS (rediss://) against the configured CA; each fails with a CA that did
not sign the server's certificate."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from cli.ops import modern_tls_context
from rulesvc.settings import Settings
from rulesvc.storage import make_engine
from tests.integration.conftest import REPO, RULESETS, rulesvc_command, start_server, stop_server
from tests.integration.test_image_command import command_of, instruction, python
from tests.tls_support import Pki, make_pki, tls_postgres, tls_redis


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_context(pki: Pki, version: ssl.TLSVersion | None = None, ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca or pki.ca_file))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def old_client_context(pki: Pki) -> ssl.SSLContext:
    """A client that speaks only TLS 1.0 and 1.1 (OpenSSL's security level lowered so that it may)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(pki.ca_file))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return str(tls.version())


def service_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    env.update(RULESVC_RULESETS=str(RULESETS), PYTHONPATH=str(REPO), **extra)
    return env


@contextlib.contextmanager
def https_server(env: dict[str, str], pki: Pki, log: Path) -> Iterator[str]:
    env = {**env, "RULESVC_TLS_CERT_FILE": str(pki.cert_file), "RULESVC_TLS_KEY_FILE": str(pki.key_file)}
    server = start_server(env, log, scheme="https", verify=client_context(pki))
    try:
        yield server.base_url
    finally:
        stop_server(server)


@contextlib.contextmanager
def permissive_server(pki: Pki) -> Iterator[int]:
    """A bare TLS server that accepts TLS 1.0 and up: the control showing that the old client does speak
    TLS 1.1, so that its failure against rulesvc is the server's refusal."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def serve_one() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True):
                pass

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        thread.join(timeout=25)
        listener.close()


def test_the_server_context_allows_tls_1_2_and_up_only(pki: Pki) -> None:
    context = modern_tls_context(
        SimpleNamespace(ssl_certfile=str(pki.cert_file), ssl_keyfile=str(pki.key_file))
    )
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(
        name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name) for name in tls12
    )


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_https_served_directly(tmp_path: Path, pki: Pki) -> None:
    env = service_env(RULESVC_DATABASE_URL=f"sqlite:///{tmp_path}/rulesvc.db")
    with https_server(env, pki, tmp_path / "serve.log") as base:
        port = int(base.rsplit(":", 1)[1])
        assert handshake(port, client_context(pki, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
        assert handshake(port, client_context(pki, ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
        answer = httpx.get(f"{base}/readyz", verify=client_context(pki, ssl.TLSVersion.TLSv1_2), timeout=10)
        assert answer.status_code == 200 and answer.json()["checks"]["database"] == "ok"

        old = old_client_context(pki)
        with permissive_server(pki) as control:
            assert handshake(control, old) in ("TLSv1.1", "TLSv1")  # the client can speak TLS 1.1 …
        with pytest.raises(ssl.SSLError) as refused:
            handshake(port, old)  # … and rulesvc refuses it (the handshake fails, whatever alert is seen)
        assert not isinstance(refused.value, ssl.SSLCertVerificationError)

        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, client_context(pki, ca=pki.wrong_ca_file))
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the HTTPS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)

        (healthcheck,) = instruction("HEALTHCHECK")  # the image's health check follows the setting
        check_env = {**env, "RULESVC_PORT": str(port), "RULESVC_TLS_CERT_FILE": str(pki.cert_file)}
        done = subprocess.run(python(command_of(healthcheck.split(" CMD ", 1)[1])), env=check_env, timeout=60)
        assert done.returncode == 0


def test_postgres_verify_full(tmp_path: Path, pki: Pki) -> None:
    with tls_postgres(pki) as port:
        url = f"postgresql://postgres@localhost:{port}/postgres"
        settings = Settings(database_url=url, database_ca_file=pki.ca_file)
        engine = make_engine(settings.database_url, **settings.engine_options())
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                ).one()
            assert row.ssl is True and row.version in ("TLSv1.2", "TLSv1.3")
        finally:
            engine.dispose()

        for refused, expected in (
            (Settings(database_url=url, database_ca_file=pki.wrong_ca_file), "certificate verify failed"),
            # verify-full checks the name: the certificate is for localhost and 127.0.0.1, not this name
            (
                Settings(
                    database_url=f"postgresql://postgres@db.invalid:{port}/postgres?hostaddr=127.0.0.1",
                    database_ca_file=pki.ca_file,
                ),
                "does not match host name",
            ),
            (Settings(database_url=f"{url}?sslmode=disable"), "no encryption"),  # the server requires TLS
        ):
            engine = make_engine(refused.database_url, **refused.engine_options())
            try:
                with pytest.raises(sa_exc.OperationalError, match=expected), engine.connect():
                    pass
            finally:
                engine.dispose()

        # the service's own command, configured by its variables
        env = service_env(RULESVC_DATABASE_URL=url, RULESVC_DATABASE_CA_FILE=str(pki.ca_file))
        done = subprocess.run(
            [*rulesvc_command(), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        env["RULESVC_DATABASE_CA_FILE"] = str(pki.wrong_ca_file)
        done = subprocess.run(
            [*rulesvc_command(), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode != 0 and "certificate verify failed" in done.stderr


def test_redis_over_tls(tmp_path: Path, pki: Pki) -> None:
    with tls_redis(pki, tmp_path) as port:
        url = f"rediss://localhost:{port}/0"
        settings = Settings(redis_url=url, redis_ca_file=pki.ca_file)
        assert settings.redis_url is not None
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        assert client.ping() is True
        client.close()
        wrong = Settings(redis_url=url, redis_ca_file=pki.wrong_ca_file)
        assert wrong.redis_url is not None
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(wrong.redis_url, socket_timeout=5).ping()
        with pytest.raises(redis.ConnectionError):  # no plain Redis on the TLS port
            redis.Redis.from_url(f"redis://localhost:{port}/0", socket_timeout=5).ping()


def test_the_service_over_tls_end_to_end(tmp_path: Path, pki: Pki) -> None:
    """HTTPS in front, PostgreSQL (verify-full) and Redis (rediss://) behind, each with the test CA."""
    with tls_postgres(pki) as pg_port, tls_redis(pki, tmp_path) as redis_port:
        env = service_env(
            RULESVC_DATABASE_URL=f"postgresql://postgres@localhost:{pg_port}/postgres",
            RULESVC_DATABASE_CA_FILE=str(pki.ca_file),
            RULESVC_REDIS_URL=f"rediss://localhost:{redis_port}/0",
            RULESVC_REDIS_CA_FILE=str(pki.ca_file),
        )
        with https_server(env, pki, tmp_path / "serve.log") as base:
            answer = httpx.get(f"{base}/readyz", verify=client_context(pki), timeout=10)
        body = answer.json()
        assert answer.status_code == 200, body
        assert body["status"] == "ready" and body["checks"] == {
            "rulesets": "ok",
            "database": "ok",
            "redis": "ok",
        }, json.dumps(body)
