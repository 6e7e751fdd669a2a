"""The dashboard and the alerts ask only for metrics the services export, with their labels, and
tell the operator a command that exists."""

import json
import re

import promql_parser
import pytest
import yaml
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from services.cli import app
from services.manifests import rendered as k8s_rendered
from services.monitoring import ALERTS, MONITORING, WINDOW, Alert, expressions, rendered
from shared.observability import Metrics

# Attached to every series by Prometheus itself, whatever the scrape configuration.
TARGET_LABELS = frozenset({"job", "instance"})


def exported_series() -> dict[str, frozenset[str]]:
    """Sample name -> label names, as a service's /metrics exposes them: the project's metrics
    and FastStream's on one registry, built as shared/runtime.py builds them."""
    metrics = Metrics()
    KafkaPrometheusMiddleware(registry=metrics.registry, app_name="order")
    registry: CollectorRegistry = metrics.registry
    # A labelled metric shows no sample until a child exists; give each one child, so the
    # exposition names every sample (_total, _bucket, _count, _sum) with its real labels.
    for collector in list(registry._collector_to_names):
        label_names = getattr(collector, "_labelnames", ())
        if label_names:
            collector.labels(*(["x"] * len(label_names)))  # type: ignore[attr-defined]
    return {
        sample.name: frozenset(sample.labels)
        for family in registry.collect()
        for sample in family.samples
    }


def parse(expr: str) -> promql_parser.Expr:
    # Grafana's interval variable, as Grafana substitutes it before Prometheus sees the query.
    return promql_parser.parse(expr.replace(WINDOW, "5m"))


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def grouping_labels(expr: promql_parser.Expr) -> list[tuple[str, promql_parser.Expr]]:
    """Each label named in a `by (...)` clause, with the expression it aggregates."""
    found: list[tuple[str, promql_parser.Expr]] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            assert node.modifier.type == promql_parser.AggModifierType.By, "use by (...)"
            found.extend((label, node.expr) for label in node.modifier.labels)

    promql_parser.walk(expr, visit)
    return found


def unknown_names(expr: str, series: dict[str, frozenset[str]]) -> list[str]:
    problems = []
    tree = parse(expr)
    for selector in selectors(tree):
        if selector.name not in series:
            problems.append(f"no metric {selector.name}")
            continue
        for matcher in selector.matchers.matchers:
            if matcher.name not in series[selector.name] | TARGET_LABELS:
                problems.append(f"{selector.name} has no label {matcher.name}")
    for label, aggregated in grouping_labels(tree):
        for selector in selectors(aggregated):
            if label not in series.get(selector.name or "", frozenset()) | TARGET_LABELS:
                problems.append(f"by ({label}): {selector.name} has no label {label}")
    return problems


def test_generated_monitoring_files_are_current() -> None:
    for name, text in rendered().items():
        assert (MONITORING / name).read_text() == text, "run `backorder docs`"


def test_every_expression_names_exported_metrics_and_labels() -> None:
    series = exported_series()
    # The exposition really carries the suffixes the expressions rely on.
    assert "backorder_dead_letters_total" in series
    assert "faststream_received_processed_messages_duration_seconds_bucket" in series
    for expr in expressions():
        assert unknown_names(expr, series) == [], expr


def test_the_check_catches_a_metric_or_label_the_services_do_not_export() -> None:
    series = exported_series()
    assert unknown_names("backorder_outbox_oldest_age > 60", series) == [
        "no metric backorder_outbox_oldest_age"
    ]
    assert unknown_names("sum by (sku) (rate(backorder_dead_letters_total[5m]))", series) == [
        "by (sku): backorder_dead_letters_total has no label sku"
    ]
    assert unknown_names('backorder_consumer_lag{partition="0"}', series) == [
        "backorder_consumer_lag has no label partition"
    ]


def test_consumer_lag_is_exported_per_group_and_topic() -> None:
    assert exported_series()["backorder_consumer_lag"] == {"group", "topic"}


def test_the_rule_file_and_the_prometheus_rule_carry_the_same_alerts() -> None:
    rule_file = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    documents = yaml.safe_load_all(k8s_rendered()["monitoring.yaml"])
    custom_resource = next(d for d in documents if d["kind"] == "PrometheusRule")
    assert custom_resource["spec"]["groups"] == rule_file["groups"]
    rules = rule_file["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [a.name for a in ALERTS]
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}
        assert "threshold" in rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize("alert", ALERTS, ids=[alert.name for alert in ALERTS])
def test_each_runbook_names_commands_that_exist(alert: Alert) -> None:
    assert re.search(r"`(backorder|kubectl) [^`]*`", alert.runbook), "say which command to run"
    for command in re.findall(r"`backorder ([^`]*)`", alert.runbook):
        words = []
        for word in command.split():
            if not re.fullmatch(r"[a-z]+", word):
                break
            words.append(word)
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"backorder {' '.join(words)}: {result.output}"


def test_the_dashboard_asks_for_its_data_source() -> None:
    board = json.loads((MONITORING / "dashboard.json").read_text())
    variables = board["templating"]["list"]
    assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= (
        variables[0].items()
    )
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    queried = {t["expr"] for p in panels for t in p["targets"]}
    for metric in (
        "backorder_outbox_oldest_age_seconds",
        "backorder_outbox_parked_rows",
        "backorder_dead_letters_total",
        "backorder_consumer_lag",
        "backorder_queue_waiting_units",
        "backorder_queue_waiting_lines",
        "backorder_queue_oldest_wait_seconds",
    ):
        assert any(metric in expr for expr in queried), metric
