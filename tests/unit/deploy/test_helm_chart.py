"""deploy/helm/rulesvc: linted and rendered offline by Helm itself (Helm v4's Go SDK, bundled as a native
library by the `helm-python-sdk` package from PyPI: no `helm` binary is packaged for Debian, and none may be
downloaded), and every rendered manifest validated against the Kubernetes API schemas (kubernetes-validate,
strict: unknown fields are errors)."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy.test_alert_rules import REPO

CHART = REPO / "deploy" / "helm" / "rulesvc"
KUBERNETES = "1.37.0"


def manifests(**values: Any) -> list[dict[str, Any]]:
    documents = []
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="rulesvc", namespace="rulesvc", is_install=True)
    for text in rendered.values():
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def deployment(documents: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (found,) = [
        doc
        for doc in by_kind(documents, "Deployment")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


OPTIONS: dict[str, Any] = {
    "checkpoints": {"existingClaim": "rulesvc-checkpoints"},
    "tracing": {"otlpEndpoint": "http://otel-collector:4318/v1/traces", "headersKey": "otlp-headers.json"},
    "notifications": {"channelsKey": "notify-channels.json"},
}
"""Every optional value set: tracing with its headers, the notification channels, a checkpoints claim."""


@pytest.mark.parametrize("values", [{}, OPTIONS, {"worker": {"healthPort": 0}}])
def test_every_manifest_is_valid_kubernetes(values: dict[str, Any]) -> None:
    documents = manifests(**values)
    assert {doc["kind"] for doc in documents} == {
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Service",
    }
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_validation_catches_a_mistake() -> None:
    api = deployment(manifests(), "api")
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES, strict=True)


def test_api_replicas_probes_resources_and_secrets() -> None:
    documents = manifests()
    api = deployment(documents, "api")
    assert api["spec"]["replicas"] == 2
    pod = api["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["rulesvc", "serve", "--host", "0.0.0.0"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "rulesvc-secrets"
    assert "emptyDir" in volumes["checkpoints"]
    claimed = deployment(manifests(checkpoints={"existingClaim": "cp"}), "api")["spec"]["template"]["spec"]
    assert {v["name"]: v for v in claimed["volumes"]}["checkpoints"]["persistentVolumeClaim"][
        "claimName"
    ] == "cp"


def test_worker_deployment() -> None:
    worker = deployment(manifests(worker={"replicas": 3}), "worker")
    assert worker["spec"]["replicas"] == 3
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["rulesvc", "worker"]
    assert container["env"] == [{"name": "RULESVC_WORKER_HEALTH_PORT", "value": "8081"}]
    assert container["ports"] == [{"name": "health", "containerPort": 8081}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    without = deployment(manifests(worker={"healthPort": 0}), "worker")["spec"]["template"]["spec"]
    assert {"env", "ports", "livenessProbe"}.isdisjoint(without["containers"][0])


def test_tracing_and_channels_are_optional_values() -> None:
    (plain,) = by_kind(manifests(), "ConfigMap")
    assert not {k for k in plain["data"] if "OTLP" in k or "TRACE" in k or "NOTIFY" in k}
    (config,) = by_kind(manifests(**OPTIONS), "ConfigMap")
    assert config["data"]["RULESVC_OTLP_ENDPOINT"] == "http://otel-collector:4318/v1/traces"
    assert config["data"]["RULESVC_OTLP_HEADERS_FILE"] == "/run/secrets/rulesvc/otlp-headers.json"
    assert config["data"]["RULESVC_TRACE_SAMPLE_RATIO"] == "1.0"
    assert config["data"]["RULESVC_NOTIFY_CHANNELS_FILE"] == "/run/secrets/rulesvc/notify-channels.json"


def test_the_migration_is_a_pre_install_and_pre_upgrade_hook() -> None:
    documents = manifests()
    (job,) = by_kind(documents, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["rulesvc", "db", "upgrade"]
    (config,) = by_kind(documents, "ConfigMap")  # the hook reads it: it is created before the hook
    assert int(config["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )


def test_pod_disruption_budget_and_service_select_the_api() -> None:
    documents = manifests()
    api_labels = deployment(documents, "api")["spec"]["template"]["metadata"]["labels"]
    (pdb,) = by_kind(documents, "PodDisruptionBudget")
    (service,) = by_kind(documents, "Service")
    for selector in (pdb["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        assert selector.items() <= api_labels.items()
    assert pdb["spec"]["minAvailable"] == 1


def test_helm_lint_finds_nothing_wrong() -> None:
    for values in ({}, OPTIONS):
        report = helm.lint(str(CHART), values, strict=True, kube_version="1.37.0")
        assert report["errors"] == [], report
        # severity 1 is information ("icon is recommended"); warnings and errors are 2 and up
        assert [m for m in report["messages"] if m["severity"] > 1] == [], report
