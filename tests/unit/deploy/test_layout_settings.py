"""The production layouts (compose, Helm) set only variables the service reads and docs/configuration.md
documents, and each sets every variable a production deployment needs."""

from __future__ import annotations

import re

import pytest

from tests.docs.test_configuration_doc import documented, read_by_code
from tests.unit.deploy.test_compose import COMPOSE, compose
from tests.unit.deploy.test_helm_chart import OPTIONS, manifests

# What a production layout must set: PostgreSQL and Redis (passwords from files), the checkpoint directory and
# signing key outside the database, the data keys, no key made by `serve`, workers apart from the API.
PRODUCTION = {
    "RULESVC_DATABASE_URL",
    "RULESVC_DATABASE_PASSWORD_FILE",
    "RULESVC_REDIS_URL",
    "RULESVC_REDIS_PASSWORD_FILE",
    "RULESVC_CHECKPOINT_DIR",
    "RULESVC_CHECKPOINT_KEY_FILE",
    "RULESVC_DATA_KEY_FILE",
    "RULESVC_BOOTSTRAP_ADMIN_KEY",
    "RULESVC_WORKER_IN_SERVE",
    "RULESVC_SESSION_COOKIE_SECURE",
    "RULESVC_WORKER_HEALTH_PORT",
}
# What a production layout offers to set (commented in compose, values in Helm): tracing, notification channels.
OPTIONAL = {
    "RULESVC_OTLP_ENDPOINT",
    "RULESVC_OTLP_HEADERS_FILE",
    "RULESVC_TRACE_SERVICE_NAME",
    "RULESVC_TRACE_SAMPLE_RATIO",
    "RULESVC_NOTIFY_CHANNELS_FILE",
}


def compose_variables() -> set[str]:
    names: set[str] = set()
    for service in compose()["services"].values():
        names |= {name for name in service.get("environment", {}) if name.startswith("RULESVC_")}
    # anything named elsewhere in the file (an interpolation, a comment) counts too
    names |= set(re.findall(r"\bRULESVC_[A-Z0-9_]*[A-Z0-9]\b", COMPOSE.read_text(encoding="utf-8")))
    return names


def helm_variables() -> set[str]:
    names: set[str] = set()
    for doc in manifests() + manifests(**OPTIONS):
        if doc["kind"] == "ConfigMap":
            names |= set(doc["data"])
        for container in _containers(doc):
            names |= {env["name"] for env in container.get("env", [])}
    return {name for name in names if name.startswith("RULESVC_")}


def _containers(doc: dict[str, object]) -> list[dict[str, object]]:
    spec = doc.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    containers = pod.get("containers", []) if isinstance(pod, dict) else []
    return list(containers)


@pytest.mark.parametrize("layout", ["compose", "helm"])
def test_every_variable_exists_and_is_documented(layout: str) -> None:
    names = compose_variables() if layout == "compose" else helm_variables()
    assert names
    assert not names - read_by_code(), (
        f"{layout} sets variables nothing reads: {sorted(names - read_by_code())}"
    )
    assert not names - documented(), f"docs/configuration.md lacks {sorted(names - documented())}"


@pytest.mark.parametrize("layout", ["compose", "helm"])
def test_every_production_variable_is_set(layout: str) -> None:
    names = compose_variables() if layout == "compose" else helm_variables()
    assert not PRODUCTION - names, f"{layout} does not set {sorted(PRODUCTION - names)}"
    assert documented() >= PRODUCTION


@pytest.mark.parametrize("layout", ["compose", "helm"])
def test_tracing_and_channels_can_be_set(layout: str) -> None:
    names = compose_variables() if layout == "compose" else helm_variables()
    assert not OPTIONAL - names, f"{layout} does not offer {sorted(OPTIONAL - names)}"
