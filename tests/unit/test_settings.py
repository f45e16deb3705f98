"""Settings read from files (mounted secrets) and the separate passwords put into the URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy import make_url

from rulesvc.settings import SECRET_FILES, Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("RULESVC_"):
            monkeypatch.delenv(name)


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_every_secret_setting_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_DATABASE_URL_FILE", secret(tmp_path, "db", "postgresql://u:p@db/rulesvc\n"))
    monkeypatch.setenv("RULESVC_REDIS_URL_FILE", secret(tmp_path, "redis", "redis://cache:6379/0\n"))
    monkeypatch.setenv("RULESVC_OIDC_CLIENT_SECRET_FILE", secret(tmp_path, "oidc", "s3cret\n"))
    settings = Settings()
    assert settings.database_url == "postgresql://u:p@db/rulesvc"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.oidc_client_secret is not None
    assert settings.oidc_client_secret.get_secret_value() == "s3cret"
    assert set(SECRET_FILES) <= set(Settings.model_fields)


def test_the_file_wins_over_the_plain_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_DATABASE_URL", "sqlite:////data/rulesvc.db")  # as the image sets it
    monkeypatch.setenv("RULESVC_DATABASE_URL_FILE", secret(tmp_path, "db", "postgresql://db/rulesvc"))
    assert Settings().database_url == "postgresql://db/rulesvc"


def test_passwords_go_into_the_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_DATABASE_URL", "postgresql://rulesvc@postgres:5432/rulesvc?sslmode=require")
    monkeypatch.setenv("RULESVC_DATABASE_PASSWORD_FILE", secret(tmp_path, "pw", "p@ss/w:rd %x\n"))
    monkeypatch.setenv("RULESVC_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("RULESVC_REDIS_PASSWORD", "r:edis")
    settings = Settings()
    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "rulesvc",
        "p@ss/w:rd %x",
        "postgres",
        5432,
        "rulesvc",
    )
    assert url.query == {"sslmode": "require"}
    assert settings.redis_url == "redis://:r%3Aedis@redis:6379/0"
    import redis

    pool = redis.ConnectionPool.from_url(settings.redis_url)
    assert pool.connection_kwargs["password"] == "r:edis"


def test_a_password_replaces_the_one_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_DATABASE_PASSWORD", "new")
    settings = Settings(database_url="postgresql://u:old@db/x")
    assert make_url(settings.database_url).password == "new"


def test_a_password_without_its_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_REDIS_PASSWORD", "x")
    with pytest.raises(ValidationError, match="设置了 redis_password，但没有设置 redis_url"):
        Settings()


def test_an_unreadable_file_names_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_REDIS_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="RULESVC_REDIS_PASSWORD_FILE：读不了"):
        Settings()


def test_the_database_ca_makes_connections_verify_full(tmp_path: Path) -> None:
    ca = Path(secret(tmp_path, "ca.pem", "-"))
    settings = Settings(database_url="postgresql://u@db.bank.cn/rulesvc", database_ca_file=ca)
    assert make_url(settings.database_url).query == {"sslmode": "verify-full", "sslrootcert": str(ca)}
    named = Settings(database_url="postgresql://u@db/rulesvc?sslmode=verify-ca", database_ca_file=ca)
    assert make_url(named.database_url).query == {"sslmode": "verify-ca", "sslrootcert": str(ca)}
    with pytest.raises(ValidationError, match="database_url 不是 postgresql:// 地址"):
        Settings(database_url="sqlite:///x.db", database_ca_file=ca)


def test_the_redis_ca_needs_rediss_and_checks_the_host(tmp_path: Path) -> None:
    import redis

    ca = Path(secret(tmp_path, "ca.pem", "-"))
    settings = Settings(redis_url="rediss://cache.bank.cn:6380/0", redis_ca_file=ca)
    assert settings.redis_url is not None
    kwargs = redis.ConnectionPool.from_url(settings.redis_url).connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == (
        str(ca),
        "required",
        True,
    )
    with pytest.raises(ValidationError, match="redis_url 不是 rediss:// 地址"):
        Settings(redis_url="redis://cache:6379/0", redis_ca_file=ca)


def test_https_needs_both_certificate_and_key(tmp_path: Path) -> None:
    cert = Path(secret(tmp_path, "cert.pem", "-"))
    with pytest.raises(ValidationError, match="须同时设置"):
        Settings(tls_cert_file=cert)
    with pytest.raises(ValidationError, match="不是文件"):
        Settings(tls_cert_file=cert, tls_key_file=tmp_path / "missing.key")


def test_json_secrets_are_read_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_OTLP_HEADERS_FILE", secret(tmp_path, "h", '{"Authorization": "Bearer t"}\n'))
    headers = Settings().otlp_headers
    assert {k: v.get_secret_value() for k, v in headers.items()} == {"Authorization": "Bearer t"}
    monkeypatch.setenv("RULESVC_OTLP_HEADERS_FILE", secret(tmp_path, "bad", "Bearer t"))
    with pytest.raises(SettingsError, match=r"RULESVC_OTLP_HEADERS_FILE：.* 不是 JSON"):
        Settings()
