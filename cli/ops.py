"""Service and operations commands: `serve`, `worker`, `audit verify`, `db upgrade` (people and keys:
`cli.people`).

Settings come from the environment (`RULESVC_DATABASE_URL`, `RULESVC_RULESETS`, ...). API keys are printed
once, alone on the last line of stdout, and never logged.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rulesvc.apikeys import Role
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock

audit_app = typer.Typer(help="The tamper-evident decision log.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

if TYPE_CHECKING:
    from rulesvc.decisions.ports import KeyStore


def register(app: typer.Typer) -> None:
    """Attach the operations commands to the root app."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar="RULESVC_HOST", help="interface to listen on"),
    port: int = typer.Option(8000, "--port", envvar="RULESVC_PORT", help="TCP port"),
    workers: int = typer.Option(1, "--workers", min=1, envvar="RULESVC_WORKERS", help="worker processes"),
) -> None:
    """Run the HTTP service under uvicorn (uvloop, httptools); migrates the database first."""
    import uvicorn

    from api.logs import configure_logging
    from rulesvc.errors import InvalidRulesetError

    settings = Settings()
    configure_logging(settings.log_level)
    try:
        from rulesvc.wiring.services import load_book

        load_book(settings)
    except InvalidRulesetError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(1) from exc
    from rulesvc.wiring.database import key_store

    with key_store(settings) as store:
        notice, to_stderr = first_key_notice(settings, store)
    if notice:
        typer.echo(notice, err=to_stderr)
        (sys.stderr if to_stderr else sys.stdout).flush()  # before the service's JSON log lines
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = Path("var") / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    background = None
    if settings.worker_in_serve:
        from scheduler.main import start_worker

        # timer poller and webhook delivery, in this process (sharing its interpreter with the requests)
        background = start_worker(settings, in_serve=True)
        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, under the handlers it found: these
        # no-op handlers let `run` return so the worker stops gracefully too.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: None)
    try:
        _run_uvicorn(uvicorn, settings, host, port, workers)
    finally:
        if background is not None:
            background.stop()


RULER = "=" * 78


def first_key_notice(settings: Settings, store: KeyStore) -> tuple[str, bool]:
    """What `serve` says about the first API key, framed so it stands out among the JSON log lines, and
    whether it goes to stderr.

    On a database without any key, the embedded SQLite default creates a local admin key and shows it
    (stdout, the key alone on its line, shown this once); any other database gets no key from `serve` and
    is told how to create the first one on the host (stderr).
    """
    from rulesvc.decisions.service import create_api_key

    if store.count_keys() > 0:
        return "", False
    if settings.is_embedded and settings.bootstrap_admin_key:
        key_id, key = create_api_key(
            store, frozenset({Role.ADMIN}), SystemClock(), "local admin (first start)"
        )
        lines = [
            f"首次启动：已创建本地管理员 API 密钥 {key_id}（仅显示这一次，请妥善保存）：",
            key,
            "更多密钥（在本机）：rulesvc keys create --role ROLE --label 名称",
        ]
        return "\n".join(["", RULER, *lines, RULER, ""]), False
    lines = [
        "数据库中还没有任何 API 密钥，所有接口都会拒绝访问。在能连到该数据库的主机上创建第一个管理员"
        "（打印用户 id 和一次性密码，只显示一次）：",
        "  RULESVC_DATABASE_URL=<同一数据库> rulesvc users create --name 管理员姓名 --role admin",
        "或者直接创建一个管理员密钥：",
        "  RULESVC_DATABASE_URL=<同一数据库> rulesvc keys create --role admin --label 管理员姓名",
    ]
    return "\n".join(["", RULER, *lines, RULER, ""]), True


def _run_uvicorn(uvicorn: Any, settings: Settings, host: str, port: int, workers: int) -> None:
    from api.logs import logging_config

    uvicorn.run(
        "api.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=_loop(),
        http=_http(),
        log_config=logging_config(settings.log_level),
        access_log=False,
        server_header=False,
        # A worker imports the app and compiles the rulesets before answering the supervisor's pings.
        timeout_worker_healthcheck=60,
        **tls_options(settings),
    )


# TLS 1.2 suites: forward-secret key exchange and AEAD ciphers only (TLS 1.3's are all of that kind).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for HTTPS when a certificate and key are configured (none: plain HTTP)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return {}
    return {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_context_factory": modern_tls_context,
    }


def modern_tls_context(config: Any, _default: Any = None) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 and 1.3 only, no compression, no renegotiation. A module-level
    function, so that uvicorn can hand it to the worker processes it spawns."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    return context


def worker() -> None:
    """Run only the timer poller and webhook delivery (no HTTP), e.g. as separate replicas; stops on
    SIGTERM/SIGINT after the poll in progress."""
    from api.logs import configure_logging
    from scheduler.main import run_worker

    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(settings)


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _http() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


@audit_app.command("verify")
def audit_verify(
    checkpoints: list[Path] = typer.Option(
        [], "--checkpoints", help="directory of signed checkpoints the chain must still extend (repeatable)"
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="database (or restored dump) to check; default RULESVC_DATABASE_URL"
    ),
    public_keys: list[str] = typer.Option(
        [],
        "--public-key",
        help="trusted checkpoint public key, hex (repeatable; default: the configured key)",
    ),
) -> None:
    """Check the chain, every table it vouches for and every checkpoint given; works offline on a database
    URL (nothing is written). Exit 1 and name what is wrong when anything does not verify."""
    from rulesvc.wiring.database import verify_database

    settings = Settings(database_url=database_url) if database_url else Settings()
    result = verify_database(settings, checkpoints, public_keys)
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
    if not result.ok:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (serve does this too)."""
    from rulesvc.wiring.database import open_database

    open_database(Settings().database_url).dispose()
    typer.echo("数据库结构已是最新")
