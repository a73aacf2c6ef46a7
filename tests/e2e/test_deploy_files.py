"""docs/deploy/: the Prometheus config, rules, Alertmanager routes and Grafana dashboard are valid.

Checked with the real tools from Debian's `prometheus` and `prometheus-alertmanager` packages:
`promtool check config`, `promtool check rules`, `promtool test rules` (the rules' behaviour on
synthetic series, docs/deploy/rules_test.yml) and `amtool check-config`. The dashboard's queries are
run against a real Prometheus in test_prometheus_fleet.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package})")
    return path


def _ok(*cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=DEPLOY, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    out = _ok(_tool("promtool", "prometheus"), "check", "config", "prometheus.yml")
    assert "1 rule files found" in out


def test_rules_are_valid() -> None:
    out = _ok(_tool("promtool", "prometheus"), "check", "rules", "faultwatch-rules.yml")
    assert "SUCCESS" in out


def test_rules_behave_as_their_unit_tests_say() -> None:
    out = _ok(_tool("promtool", "prometheus"), "test", "rules", "rules_test.yml")
    assert "SUCCESS" in out


def test_alertmanager_config_is_valid() -> None:
    out = _ok(_tool("amtool", "prometheus-alertmanager"), "check-config", "alertmanager.yml")
    assert "SUCCESS" in out


def test_every_alert_is_routed_with_a_severity_alertmanager_knows() -> None:
    rules = (DEPLOY / "faultwatch-rules.yml").read_text(encoding="utf-8")
    routes = (DEPLOY / "alertmanager.yml").read_text(encoding="utf-8")
    severities = {line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("severity:")}
    assert severities == {"critical", "warning"}
    assert 'severity="critical"' in routes and 'severity="warning"' in routes


def dashboard_queries() -> list[str]:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    queries = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queries += [a["expr"] for a in dash["annotations"]["list"]]
    return queries


def test_dashboard_panels_each_have_a_query_and_a_unique_id() -> None:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in dash["panels"])
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "site"}
