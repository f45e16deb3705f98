"""The Grafana dashboard: every panel's expression parses (promtool checks them wrapped as recording rules)
and names only metrics of the one table in docs/metrics.md (which the live /metrics is checked against in
tests/integration/test_metrics_replicas.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.unit.deploy.test_alert_rules import DOC, REPO, promtool

DASHBOARD = REPO / "deploy" / "grafana" / "rulesvc.json"


def expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def test_every_panel_expression_parses(tmp_path: Path) -> None:
    exprs = expressions()
    assert len(exprs) >= 10
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_panels_name_only_exported_metrics() -> None:
    documented = set(re.findall(r"^\| `(rulesvc_[a-z_]+)` \|", DOC.read_text(), re.M))
    histograms = set(re.findall(r"^\| `(rulesvc_[a-z_]+)` \| histogram \|", DOC.read_text(), re.M))
    series = documented | {f"{h}_{s}" for h in histograms for s in ("bucket", "sum", "count")}
    named = {n for e in expressions() for n in re.findall(r"\b(rulesvc_[a-z_]+)", e)}
    assert named and not named - series, named - series


def test_the_dashboard_covers_each_area() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = " ".join(panel["title"] for panel in board["panels"])
    for area in ("决策", "延迟", "SLA", "计时", "Webhook", "日志链", "日历"):
        assert area in titles, area
