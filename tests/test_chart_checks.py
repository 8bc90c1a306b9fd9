"""The chart checks of `make chart-check`, run as tests with the real helm, kubernetes-validate
and promtool (deploy/check_chart.py). No cluster exists here: these are the offline checks.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from deploy import check_chart as cc

ROOT = Path(__file__).resolve().parents[1]


VALUES = [None, *cc.values_files()]
IDS = [cc._label(v) for v in VALUES]

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None and os.environ.get("CI") != "true",
    reason="promtool is not installed (apt-get install prometheus); CI installs it",
)


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict[str, Any]]]:
    all_renders: dict[str, list[dict[str, Any]]] = cc.all_renders()
    return all_renders


def test_helm_and_kubectl_come_from_the_cdk_layer() -> None:
    tools = cc.ensure_tools()
    assert os.access(tools["helm"], os.X_OK) and os.access(tools["kubectl"], os.X_OK)
    assert cc._run([tools["helm"], "version", "--short"]).stdout.startswith("v3.")


def test_every_example_values_file_is_checked() -> None:
    names = {p.name for p in cc.values_files()}
    assert {
        "values-hall-b.yaml",
        "values-hall-d.yaml",
        "values-epic.yaml",
        "values-small.yaml",
    } <= names


@pytest.mark.parametrize("values", VALUES, ids=IDS)
def test_helm_lint_strict(values: Path | None) -> None:
    out = cc.helm_lint(values)
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("label", IDS)
def test_rendered_objects_are_valid_kubernetes_1_31(
    renders: dict[str, list[dict[str, Any]]], label: str
) -> None:
    checked = cc.validate_objects(renders[label])
    # Every object, plus the training Job carried inside its ConfigMap.
    assert len(checked) == len(renders[label]) + 1
    assert any("embedded" not in line and "batch/v1" in line for line in checked)


def test_validation_is_strict_about_unknown_fields(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = next(o for o in renders["(defaults)"] if o["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(cc.CheckError, match="imagePullPolicyy"):
        cc.validate_objects([broken])


def test_custom_resources_are_checked_for_required_fields(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    scaled = next(o for o in renders["values-epic.yaml"] if o["kind"] == "ScaledObject")
    broken = copy.deepcopy(scaled)
    del broken["spec"]["triggers"][0]["metadata"]["threshold"]
    with pytest.raises(cc.CheckError, match="threshold"):
        cc.validate_objects([broken])
    rule = next(o for o in renders["values-hall-b.yaml"] if o["kind"] == "PrometheusRule")
    broken = copy.deepcopy(rule)
    del broken["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(cc.CheckError, match="expr"):
        cc.validate_objects([broken])
    unknown = {"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    with pytest.raises(cc.CheckError, match="no schema"):
        cc.validate_objects([unknown])


@needs_promtool
def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    out = cc.check_alert_rules()
    assert "SUCCESS: 15 rules found" in out
    assert out.count("SUCCESS") == 2


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    import yaml

    alerts = {
        r["alert"]
        for g in yaml.safe_load(cc.ALERTS.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    tests = yaml.safe_load(cc.ALERT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == fired
    records = {
        r["record"]
        for g in yaml.safe_load(cc.ALERTS.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    tested = {c["expr"] for t in tests for c in t.get("promql_expr_test", [])}
    assert records == tested == {"hydra:backlog_orders", "hydra:queue_wait_p90_seconds"}


def test_values_schema_covers_every_value() -> None:
    assert "covers every key" in cc.check_values_schema()
    import json

    schema = json.loads((cc.CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert schema["properties"]["trainer"]["properties"]["image"]["properties"]["variant"] == {
        "enum": ["gpu", "cpu"]
    }
    # A misspelt key is refused by helm, not silently ignored.
    with pytest.raises(cc.CheckError, match="Additional property replicass"):
        cc.helm_template(None, ["feeder.replicass=1"])
    with pytest.raises(cc.CheckError, match="variant"):
        cc.helm_template(None, ["trainer.image.variant=tpu"])


@needs_promtool
def test_dashboard_and_scaler_queries_parse(renders: dict[str, list[dict[str, Any]]]) -> None:
    scalers = [q for objs in renders.values() for q in cc.scaler_queries(objs)]
    keda = [q for q in scalers if q.where == "ScaledObject query"]
    queries = cc.alert_queries() + cc.dashboard_queries() + keda
    assert cc.check_promql_syntax(queries) == len(queries) > 30
    with pytest.raises(cc.CheckError, match="cannot parse"):
        cc.check_promql_syntax([cc.Query("broken", "sum(rate(hydra_keeper_reports_total[5m])")])


def test_every_metric_used_is_exported(renders: dict[str, list[dict[str, Any]]]) -> None:
    scalers = [q for objs in renders.values() for q in cc.scaler_queries(objs)]
    queries = cc.alert_queries() + cc.dashboard_queries() + scalers
    report = cc.check_metric_names(queries)
    assert "all in contracts.md" in report[0]
    used = {n for q in queries for n in cc._METRIC_RE.findall(q.expr)}
    assert {"hydra_balancer_queue_depth", "hydra_keeper_alarms_total", "up"} <= used


def test_metric_check_refuses_unknown_names_and_labels() -> None:
    bad = [
        cc.Query("a", "rate(hydra_keeper_alarm_total[5m])"),
        cc.Query("b", 'hydra_feeder_files_total{result="fed"}'),
        cc.Query("c", "hydra_predictor_predict_seconds"),  # a histogram has no bare series
    ]
    with pytest.raises(cc.CheckError) as info:
        cc.check_metric_names(bad)
    message = str(info.value)
    assert "hydra_keeper_alarm_total" in message
    assert "no label 'result'" in message
    assert "hydra_predictor_predict_seconds is not" in message


def test_contract_parser_knows_kinds_and_labels() -> None:
    metrics = cc.contract_metrics()
    assert metrics["hydra_predictor_predict_seconds"].histogram
    assert metrics["hydra_predictor_predict_seconds"].labels == {"signature"}
    assert metrics["hydra_feeder_files_total"].labels == {"outcome"}
    assert not metrics["hydra_balancer_queue_depth"].histogram
    assert (
        "hydra_keeper_db_write_seconds_bucket" in metrics["hydra_keeper_db_write_seconds"].series()
    )
