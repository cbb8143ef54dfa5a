"""The operator kit in deploy/ stays loadable and written against the contract's metrics.

Prometheus' own `promtool` checks the scrape configuration and the alert rules
and runs the rules' unit tests (deploy/prometheus/alerts_test.yml, where every
alert is shown firing and staying quiet). Without promtool those tests skip
(`make promtool` unpacks Debian's); under CI they fail instead. The rest needs
nothing installed: the dashboard's structure, and every series, label and
label value the rules and the dashboard read, checked against the metrics table
of the operations contract (beside the repository) and against the
repository's copy of it (deploy/metrics.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from server.settings import Settings
from tests.deploy.metrics_contract import (
    CONTRACT,
    COPY,
    ROOT,
    Metric,
    metric_of_series,
    parse_metrics,
)
from tests.deploy.promql_usage import Usage, read_usage

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "storefront.json"
# Labels every scraped series has (added by Prometheus from the target).
TARGET_LABELS = {"job", "instance"}
SEVERITIES = {"critical", "warning"}
# The oldest dashboard schema of a supported Grafana (11.0); 42 is Grafana 12's.
OLDEST_SCHEMA_VERSION = 39
GRID_WIDTH = 24


def _promtool() -> str:
    """promtool: the one `make promtool` unpacked into .venv/bin, else one on PATH."""
    local = ROOT / ".venv" / "bin" / "promtool"
    found = str(local) if local.exists() else shutil.which("promtool")
    if found is None:
        message = "promtool is missing: Prometheus config and rule checks not run (`make promtool`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run_promtool(*args: str) -> str:
    result = subprocess.run(
        [_promtool(), *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return groups


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _rule_groups() for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels() -> list[dict[str, Any]]:
    """Every panel but the rows, including those folded inside a collapsed row."""
    panels = []
    for panel in _dashboard()["panels"]:
        panels.extend(panel.get("panels", []) if panel["type"] == "row" else [panel])
    return panels


def _expressions() -> dict[str, str]:
    """Every PromQL expression of the kit, by where it is: rules, then dashboard targets."""
    found = {f"rule {rule.get('alert') or rule['record']}": rule["expr"] for rule in _rules()}
    for panel in _panels():
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} target {target['refId']}"] = target["expr"]
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(selector, label): the selector is PromQL.
            selector = re.fullmatch(r"label_values\((.+), \w+\)", variable["definition"])
            assert selector is not None, variable["definition"]
            found[f"variable {variable['name']}"] = selector[1]
    return found


# --- promtool -----------------------------------------------------------------


def test_scrape_configuration_and_the_rules_it_loads_pass_promtool_check_config() -> None:
    output = _run_promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: prometheus.yml is valid prometheus config file syntax" in output
    assert f"SUCCESS: {len(_rules())} rules found" in output


def test_alert_rules_pass_promtool_check_rules() -> None:
    output = _run_promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(_rules())} rules found" in output


def test_alert_rules_pass_their_unit_tests() -> None:
    output = _run_promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in output


# --- the rules' shape -----------------------------------------------------------


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_waits_has_a_severity_and_says_what_to_do(alert: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+[smh]", alert.get("for", "")), "a `for:` keeps one bad scrape quiet"
    assert alert["labels"]["severity"] in SEVERITIES
    assert alert["labels"]["service"] == "storefront"
    for annotation in ("summary", "description", "runbook"):
        assert alert["annotations"].get(annotation, "").strip(), annotation


def test_every_alert_is_unit_tested_both_firing_and_quiet() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    firing, quiet = set(), set()
    for group in tests["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_readme_lists_every_alert() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `(Storefront\w+)` \|", readme, re.MULTILINE))
    assert listed == {alert["alert"] for alert in _alerts()}


def test_pool_capacity_is_the_default_pool_size_plus_overflow() -> None:
    capacity = next(r for r in _rules() if r.get("record") == "storefront:db_pool_capacity")
    defaults = Settings.from_env({})
    assert capacity["expr"] == f"vector({defaults.db_pool_size + defaults.db_max_overflow})"


# --- the dashboard's shape -------------------------------------------------------


def test_dashboard_has_a_current_schema_and_a_datasource_variable() -> None:
    dashboard = _dashboard()
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= OLDEST_SCHEMA_VERSION
    assert dashboard["uid"]
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}", variable["name"]


def test_every_panel_queries_the_datasource_variable() -> None:
    rows = [panel for panel in _dashboard()["panels"] if panel["type"] == "row"]
    ids = [panel["id"] for panel in rows + _panels()]
    assert len(set(ids)) == len(ids), "panel ids are unique"
    for panel in _panels():
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in _dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']!r} overlaps another panel"
        taken |= cells


# --- names against the contract --------------------------------------------------


def _contract_source(source: str) -> dict[str, Metric]:
    if source == "copy":
        return parse_metrics(COPY.read_text())
    if not CONTRACT.is_file():
        message = f"the public contract is not beside the repository ({CONTRACT})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return parse_metrics(CONTRACT.read_text())


@pytest.fixture(params=["copy", "contract"])
def metrics(request: pytest.FixtureRequest) -> dict[str, Metric]:
    """The metrics table: deploy/metrics.md, or the contract's operations.md."""
    return _contract_source(request.param)


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _bucket_labels(names: Iterable[str]) -> set[str]:
    """`le`, the bucket bound, where histogram buckets are read."""
    return {"le"} if any(name.endswith("_bucket") for name in names) else set()


def _problems(where: str, usage: Usage, metrics: dict[str, Metric]) -> list[str]:
    """What `usage` reads that the contract does not define."""
    problems = []
    for selector in usage.selectors:
        if selector.name in _recorded():
            continue
        metric = metric_of_series(metrics, selector.name)
        if metric is None:
            problems.append(f"{where}: {selector.name} is not a metric of the contract")
            continue
        allowed = set(metric.labels) | TARGET_LABELS | _bucket_labels([selector.name])
        for label, operator, value in selector.matchers:
            if label not in allowed:
                problems.append(f"{where}: {selector.name} has no label {label}")
                continue
            values = metric.labels.get(label)
            used = value.split("|") if operator in {"=~", "!~"} else [value]
            if values is not None and not set(used) <= values:
                problems.append(f"{where}: {selector.name}{{{label}}} is one of {sorted(values)}")
    for grouping in usage.groupings:
        if set(grouping.names) & _recorded():
            continue
        found = [metric_of_series(metrics, name) for name in grouping.names]
        allowed = TARGET_LABELS | _bucket_labels(grouping.names)
        for metric in found:
            allowed |= set(metric.labels) if metric is not None else set()
        for label in set(grouping.labels) - allowed:
            problems.append(f"{where}: by ({label}) is a label of none of {grouping.names}")
    return problems


def test_rules_and_dashboard_read_only_the_contracts_metrics_labels_and_values(
    metrics: dict[str, Metric],
) -> None:
    problems = []
    for where, expression in _expressions().items():
        problems += _problems(where, read_usage(expression), metrics)
    assert problems == []


def test_every_metric_of_the_contract_is_on_the_dashboard(metrics: dict[str, Metric]) -> None:
    shown = {
        metric.name
        for target in _panels()
        for expression in [t["expr"] for t in target["targets"]]
        for selector in read_usage(expression).selectors
        if (metric := metric_of_series(metrics, selector.name)) is not None
    }
    assert set(metrics) - shown == set()


def test_the_repository_copy_of_the_metrics_table_equals_the_contract() -> None:
    assert _contract_source("contract") == _contract_source("copy")
    assert len(_contract_source("copy")) >= 15
