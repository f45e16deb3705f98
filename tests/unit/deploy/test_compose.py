"""deploy/compose/compose.yaml: valid against the Compose Specification's JSON schema (vendored with its
licence in compose_spec/, validated with jsonschema: no Docker engine here), and laid out as documented: two
API replicas, one worker, PostgreSQL, Redis, health checks on /readyz, secrets from files, the migration run
before the API and the worker."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rulesvc.settings import Settings
from tests.unit.deploy.test_alert_rules import REPO

COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # merge keys resolved
    return loaded


def errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert errors(compose()) == []


def test_the_schema_check_catches_a_mistake() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["healthcheck"]["intervall"] = "15s"
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_finished"
    found = errors(broken)
    assert any("intervall" in e for e in found) and any("service_finished" in e for e in found), found


def test_two_api_replicas_one_worker_postgres_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"migrate", "api", "worker", "postgres", "redis"}
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["api"]["command"] == ["rulesvc", "serve", "--host", "0.0.0.0"]
    assert services["api"]["environment"]["RULESVC_WORKER_IN_SERVE"] == "false"
    assert services["worker"]["deploy"]["replicas"] == 1
    assert services["worker"]["command"] == ["rulesvc", "worker"]


def test_health_checks_use_the_services_own_probes() -> None:
    services = compose()["services"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])
    port = services["worker"]["environment"]["RULESVC_WORKER_HEALTH_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(services["worker"]["healthcheck"]["test"])


def test_a_stuck_worker_is_restarted_by_its_own_exit() -> None:
    """Compose acts on a health check only for `depends_on`, never by restarting: the worker exits by itself
    once stalled (tests/integration/test_worker_health.py), and its restart policy brings it back."""
    worker = compose()["services"]["worker"]
    assert worker["restart"] == "unless-stopped"
    stall = float(worker["environment"].get("RULESVC_WORKER_STALL_SECONDS", Settings().worker_stall_seconds))
    assert stall >= 35  # above the heartbeat interval plus the database's statement timeout


def test_the_migration_runs_once_before_the_api_and_the_worker() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["rulesvc", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_secrets_come_from_files_never_from_the_environment() -> None:
    document = compose()
    for secret in document["secrets"].values():
        assert set(secret) == {"file"}
    for name in ("migrate", "api", "worker"):
        service = document["services"][name]
        environment = service["environment"]
        for variable, value in environment.items():
            if variable.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), variable
                assert Path(value).name in service["secrets"], variable
        # the URLs carry no password: it is read from the secret file
        assert "@" in environment["RULESVC_DATABASE_URL"]
        assert ":" not in environment["RULESVC_DATABASE_URL"].split("//", 1)[1].split("@", 1)[0]
        assert "@" not in environment["RULESVC_REDIS_URL"]
    assert (
        document["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]
        == "/run/secrets/db_password"
    )
