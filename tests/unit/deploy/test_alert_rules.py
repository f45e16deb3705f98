"""The shipped Prometheus alert rules: `promtool check rules` and `promtool test rules` (unit tests on
synthetic series, `deploy/prometheus/rulesvc-rules.test.yml`) pass, and the rules name only metrics of the
one table in docs/metrics.md. promtool comes from Debian's `prometheus` package (`make test` installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "deploy" / "prometheus" / "rulesvc-rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "rulesvc-rules.test.yml"
DOC = REPO / "docs" / "metrics.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool missing (apt-get install prometheus; `make test` installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_name_only_documented_metrics() -> None:
    documented = set(re.findall(r"^\| `(rulesvc_[a-z_]+)` \|", DOC.read_text(), re.M))
    named = set(re.findall(r"\b(rulesvc_[a-z_]+)", RULES.read_text()))
    assert named and not named - documented, named - documented
