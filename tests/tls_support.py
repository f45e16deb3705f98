"""Certificates made by the test suite (a CA, server certificates for 127.0.0.1 and localhost, and a second
CA that signed nothing the servers present), and private PostgreSQL and Redis servers speaking TLS, started
from the installed binaries on free ports. Under CI=true a missing binary fails; elsewhere it skips."""

from __future__ import annotations

import contextlib
import glob
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class Pki:
    ca_file: Path  # the CA the servers' certificates chain to
    cert_file: Path  # server certificate for 127.0.0.1 and localhost
    key_file: Path
    wrong_ca_file: Path  # another CA: verifying against it must fail


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("rulesvc test CA")
    wrong_ca, _ = _ca("rulesvc test CA (not the servers')")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = Pki(
        directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "wrong-ca.pem"
    )
    pki.ca_file.write_bytes(ca.public_bytes(pem))
    pki.wrong_ca_file.write_bytes(wrong_ca.public_bytes(pem))
    pki.cert_file.write_bytes(cert.public_bytes(pem))
    pki.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pki.key_file.chmod(0o600)
    return pki


def missing(what: str) -> None:
    """Fail under CI (the binary must be installed), skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: required)")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}:\n{log.read_text(errors='replace')}")


def postgres_bin() -> Path:
    """The installed PostgreSQL server binaries (Debian: /usr/lib/postgresql/N/bin), newest first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        missing("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    return Path(str(initdb)).parent


@contextlib.contextmanager
def tls_postgres(pki: Pki) -> Iterator[int]:
    """A private PostgreSQL with ssl=on on a free port of 127.0.0.1 that refuses connections without TLS
    (trust authentication over TLS, user `postgres`); yields its port. initdb refuses to run as root, so as
    root it runs as the `postgres` system user."""
    binaries = postgres_bin()
    as_root = os.geteuid() == 0
    if as_root:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            missing("no `postgres` system user to run a private PostgreSQL as (running as root)")
    home = Path(tempfile.mkdtemp(prefix="rulesvc-tls-pg-"))
    data = home / "data"
    for name, source in (("server.pem", pki.cert_file), ("server.key", pki.key_file)):
        shutil.copy(source, home / name)
    (home / "server.key").chmod(0o600)
    prefix: list[str] = []
    if as_root:
        for path in (home, home / "server.pem", home / "server.key"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    log = home / "postgres.log"
    subprocess.run(
        [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (data / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        encoding="utf-8",
    )
    options = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={home} -c ssl=on "
        f"-c ssl_cert_file={home}/server.pem -c ssl_key_file={home}/server.key -c fsync=off"
    )
    subprocess.run(
        [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield port
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def tls_redis(pki: Pki, directory: Path) -> Iterator[int]:
    """A private redis-server speaking only TLS on a free port of 127.0.0.1 (no client certificates asked);
    yields its port."""
    server = shutil.which("redis-server")
    if server is None:
        missing("redis-server not found: apt-get install redis-server")
    version = subprocess.run([str(server), "--version"], capture_output=True, text=True, check=True).stdout
    port = free_port()
    log = directory / "redis.log"
    command = [
        str(server),
        "--port", "0",
        "--tls-port", str(port),
        "--bind", "127.0.0.1",
        "--tls-cert-file", str(pki.cert_file),
        "--tls-key-file", str(pki.key_file),
        "--tls-ca-cert-file", str(pki.ca_file),
        "--tls-auth-clients", "no",
        "--tls-protocols", "TLSv1.2 TLSv1.3",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
    ]  # fmt: skip
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_for_port(port, process, log, seconds=30)
        except RuntimeError as exc:
            if "TLS" in log.read_text(errors="replace") and process.poll() is not None:
                missing(f"this redis-server ({version.strip()}) was built without TLS: {exc}")
            raise
        yield port
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
