"""The Grafana dashboard and the Prometheus alert rules, declared once with their PromQL.

`backorder docs` writes them to `deploy/monitoring/` (and the rules, as a PrometheusRule, to
`deploy/k8s/`); a test fails when they are stale or name a metric the services do not export.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any, Literal

import yaml

MONITORING = Path(__file__).resolve().parents[1] / "deploy" / "monitoring"
DASHBOARD_UID = "backorder"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ALERT_GROUP = "backorder"

Unit = Literal["s", "short", "ops"]
Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: Unit = "short"
    description: str = ""


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str
    runbook: str


# Grafana picks the window: at least four scrape intervals, so a rate always has two samples.
WINDOW = "$__rate_interval"

ROWS = (
    Row(
        "Outbox",
        (
            Panel(
                "Oldest unpublished event",
                "backorder_outbox_oldest_age_seconds",
                "{{instance}}",
                unit="s",
                description="The relay polls every half second: more than seconds means the "
                "broker is unreachable or refusing, or the relay is stuck.",
            ),
            Panel(
                "Events committed, not yet published",
                "backorder_outbox_backlog",
                "{{instance}}",
            ),
            Panel(
                "Parked outbox rows waiting for an operator",
                "backorder_outbox_parked_rows",
                "{{instance}}",
                description="Rows the broker refused for good; `backorder outbox parked`.",
            ),
            Panel(
                "Rows parked per topic",
                f"sum by (topic) (increase(backorder_outbox_parked_total[{WINDOW}]))",
                "{{topic}}",
            ),
        ),
    ),
    Row(
        "Consumers and dead letters",
        (
            Panel(
                "Consumer lag (records behind)",
                "max by (group, topic) (backorder_consumer_lag)",
                "{{group}} on {{topic}}",
                description="Every instance of a group reports the same lag: the maximum is it.",
            ),
            Panel(
                "Dead letters per second, by original topic",
                f"sum by (topic) (rate(backorder_dead_letters_total[{WINDOW}]))",
                "{{topic}}",
                unit="ops",
                description="`backorder dlq list TOPIC` shows them with their reason.",
            ),
            Panel(
                "Messages handled per second",
                "sum by (app_name, handler) "
                f"(rate(faststream_received_processed_messages_total[{WINDOW}]))",
                "{{app_name}} {{handler}}",
                unit="ops",
            ),
            Panel(
                "Batch handling time, 95th percentile",
                "histogram_quantile(0.95, sum by (app_name, handler, le) "
                f"(rate(faststream_received_processed_messages_duration_seconds_bucket[{WINDOW}])))",
                "{{app_name}} {{handler}}",
                unit="s",
            ),
        ),
    ),
    Row(
        "Queues (the allocator's top SKUs)",
        (
            Panel(
                "Units waiting per SKU",
                "topk(10, max by (sku) (backorder_queue_waiting_units))",
                "{{sku}}",
            ),
            Panel(
                "Lines waiting per SKU",
                "topk(10, max by (sku) (backorder_queue_waiting_lines))",
                "{{sku}}",
            ),
            Panel(
                "Longest wait at the head of a queue",
                "topk(10, max by (sku) (backorder_queue_oldest_wait_seconds))",
                "{{sku}}",
                unit="s",
            ),
            Panel(
                "Line decisions per second",
                f"sum by (status) (rate(backorder_line_decisions_total[{WINDOW}]))",
                "{{status}}",
                unit="ops",
            ),
            Panel(
                "Units filled per second",
                f"sum(rate(backorder_units_filled_total[{WINDOW}]))",
                "units",
                unit="ops",
            ),
        ),
    ),
    Row(
        "Notifications",
        (
            Panel(
                "Delivery attempts per second",
                f"sum by (channel, outcome) (rate(backorder_notifications_total[{WINDOW}]))",
                "{{channel}} {{outcome}}",
                unit="ops",
            ),
        ),
    ),
    Row(
        "Retention",
        (
            Panel(
                "Rows pruned per table",
                f"sum by (table) (increase(backorder_retention_pruned_total[{WINDOW}]))",
                "{{table}}",
                description="Dedupe rows past their topics' retention and closed rows past "
                "BACKORDER_RETENTION_CLOSED_SECONDS, deleted every "
                "BACKORDER_RETENTION_INTERVAL_SECONDS (README, Guarantees).",
            ),
        ),
    ),
)

ALERTS = (
    Alert(
        "BackorderOutboxStalled",
        "backorder_outbox_oldest_age_seconds > 120",
        "5m",
        "warning",
        "Events of {{ $labels.instance }} have waited over 2 minutes to be published",
        "The oldest committed event is {{ $value | humanizeDuration }} old (threshold 120 s "
        "for 5 minutes; the relay normally publishes within a second). Customers and the shop "
        "hear nothing new from this service while it lasts. Usual causes: Kafka unreachable "
        "(the pod's /health/ready says so), the broker refusing every batch, or the relay "
        "task stopped.",
        "Check readiness and the pod's log for 'outbox'; `backorder topics describe` shows "
        "whether the broker answers; `backorder outbox parked --source SERVICE` lists rows the "
        "broker refused for good.",
    ),
    Alert(
        "BackorderOutboxStalledLong",
        "backorder_outbox_oldest_age_seconds > 900",
        "5m",
        "critical",
        "Events of {{ $labels.instance }} have waited over 15 minutes to be published",
        "The oldest committed event is {{ $value | humanizeDuration }} old (threshold 900 s "
        "for 5 minutes). Orders, decisions and customer notices downstream are stuck.",
        "As for BackorderOutboxStalled (`backorder topics describe`, `backorder outbox parked "
        "--source SERVICE`); if Kafka answers and the backlog still grows, restart the pod: "
        "its relay starts again and publishes in commit order.",
    ),
    Alert(
        "BackorderOutboxRowsParked",
        "backorder_outbox_parked_rows > 0",
        "1m",
        "warning",
        "{{ $value }} outbox rows refused by the broker wait for an operator "
        "({{ $labels.instance }})",
        "The broker refused these events for good (too large for the producer or the topic), "
        "so they were parked and the rows behind them went on. Whoever should have received "
        "them has not. Any parked row is one too many (threshold: more than 0 for 1 minute).",
        "`backorder outbox parked --source SERVICE` lists each row with its topic, size and "
        "the broker's reason.",
    ),
    Alert(
        "BackorderDeadLetters",
        "sum by (topic) (increase(backorder_dead_letters_total[15m])) > 0",
        "0m",
        "warning",
        "Messages from {{ $labels.topic }} were dead-lettered",
        "About {{ $value | humanize }} messages of {{ $labels.topic }} went to "
        "{{ $labels.topic }}.dlq in the last 15 minutes (threshold: any). They were malformed, "
        "conflicting, too large, or kept failing; nothing happens to them until someone looks.",
        "`backorder dlq list {{ $labels.topic }}` lists them with their dlq-reason; "
        "`backorder dlq show` one; `backorder dlq replay` once the cause is fixed.",
    ),
    Alert(
        "BackorderDeadLetterBurst",
        "sum by (topic) (rate(backorder_dead_letters_total[5m])) > 0.5",
        "5m",
        "critical",
        "{{ $labels.topic }} is dead-lettering steadily",
        "{{ $value | humanize }} dead letters per second from {{ $labels.topic }} for 5 "
        "minutes (threshold 0.5/s): not a stray bad message but a producer sending a wrong "
        "schema, or a defect rejecting good messages.",
        "`backorder dlq list {{ $labels.topic }}` and read the dlq-reason of the newest; fix "
        "the producer or roll back, then `backorder dlq replay`.",
    ),
    Alert(
        "BackorderConsumerLagGrowing",
        "max by (group, topic) (backorder_consumer_lag) > 1000"
        " and max by (group, topic) (deriv(backorder_consumer_lag[10m])) >= 0",
        "10m",
        "warning",
        "{{ $labels.group }} is not catching up on {{ $labels.topic }}",
        "{{ $labels.group }} is {{ $value }} records behind on {{ $labels.topic }} and the lag "
        "has not shrunk for 10 minutes (threshold: over 1000 records and not falling). Lag on "
        "allocation.commands delays SKU decisions; on allocation.line-changed or "
        "orders.status-changed, what customers are told.",
        "`backorder lag --group {{ $labels.group }}` shows its committed and end offsets per "
        "topic (`--json`: per partition); look for a crash-looping or not-ready pod, or one "
        "hot partition (docs/scaling.md).",
    ),
    Alert(
        "BackorderQueueDeep",
        "max by (sku) (backorder_queue_waiting_units) > 1000",
        "1h",
        "info",
        "SKU {{ $labels.sku }} has {{ $value }} units on backorder",
        "{{ $value }} units of {{ $labels.sku }} wait (threshold 1000 units for an hour). Not "
        "a fault of the service: purchasing should know.",
        "`backorder queue {{ $labels.sku }}` shows the queue; `backorder demand` the "
        "shortfall per SKU.",
    ),
    Alert(
        "BackorderOldestWaitLong",
        "max by (sku) (backorder_queue_oldest_wait_seconds) > 14 * 86400",
        "1h",
        "info",
        "The first customer waiting for {{ $labels.sku }} has waited over two weeks",
        "The head of {{ $labels.sku }}'s queue has waited {{ $value | humanizeDuration }} "
        "(threshold 14 days). Set a max_wait in the SKU's policy if such lines should expire.",
        "`backorder queue {{ $labels.sku }}`; `backorder demand` shows what is scheduled to "
        "arrive.",
    ),
    Alert(
        "BackorderNotificationsFailing",
        'sum by (channel) (increase(backorder_notifications_total{outcome="failed"}[30m])) > 0',
        "0m",
        "warning",
        "{{ $labels.channel }} notifications failed for good",
        "About {{ $value | humanize }} {{ $labels.channel }} notifications failed in the last "
        "30 minutes after their retries (threshold: any): customers or the shop were not told. "
        "They were dead-lettered to orders.status-changed.dlq.",
        "`backorder dlq list orders.status-changed` shows the channel, recipient and last "
        "error; fix SMTP or the webhook, then `backorder dlq replay orders.status-changed`.",
    ),
    Alert(
        "BackorderMetricsMissing",
        "absent(backorder_outbox_backlog)",
        "10m",
        "warning",
        "No backorder service is being scraped",
        "No instance reported backorder_outbox_backlog for 10 minutes (threshold: absent for "
        "10 minutes): every other alert here is silent. The services are down, or Prometheus "
        "does not scrape their pods (prometheus.io/scrape annotations, port 8080, /metrics).",
        "`kubectl get pods -l app.kubernetes.io/name=backorder`; then Prometheus' targets page.",
    ),
)


def expressions() -> list[str]:
    """Every PromQL expression the dashboard and the alerts evaluate."""
    return [panel.expr for row in ROWS for panel in row.panels] + [a.expr for a in ALERTS]


def rule_groups() -> list[dict[str, Any]]:
    return [
        {
            "name": ALERT_GROUP,
            "rules": [
                {
                    "alert": alert.name,
                    "expr": alert.expr,
                    "for": alert.for_,
                    "labels": {"severity": alert.severity},
                    "annotations": {
                        "summary": alert.summary,
                        "description": alert.description,
                        "runbook": alert.runbook,
                    },
                }
                for alert in ALERTS
            ],
        }
    ]


def prometheus_rule() -> dict[str, Any]:
    """The same rules for the Prometheus Operator."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "backorder", "labels": {"app.kubernetes.io/name": "backorder"}},
        "spec": {"groups": rule_groups()},
    }


def _panels() -> Iterator[dict[str, Any]]:
    ids = count(1)
    y = 0
    for row in ROWS:
        yield {
            "type": "row",
            "id": next(ids),
            "title": row.title,
            "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            "panels": [],
        }
        y += 1
        for index, panel in enumerate(row.panels):
            yield {
                "type": "timeseries",
                "id": next(ids),
                "title": panel.title,
                "description": panel.description,
                "datasource": DATASOURCE,
                "gridPos": {"x": 12 * (index % 2), "y": y + 8 * (index // 2), "w": 12, "h": 8},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": "A",
                        "datasource": DATASOURCE,
                        "expr": panel.expr,
                        "legendFormat": panel.legend,
                    }
                ],
            }
        y += 8 * ((len(row.panels) + 1) // 2)


def dashboard() -> dict[str, Any]:
    """A Grafana dashboard; the Prometheus data source is chosen on import or in the dropdown."""
    return {
        "uid": DASHBOARD_UID,
        "title": "Backorder service",
        "tags": ["backorder"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                }
            ]
        },
        "annotations": {"list": []},
        "panels": list(_panels()),
    }


def _rules_yaml() -> str:
    body = yaml.safe_dump({"groups": rule_groups()}, sort_keys=False, width=100)
    return (
        "# Prometheus alert rules (rule_files format).\n"
        "# Generated by `backorder docs` from services/monitoring.py; do not edit by hand.\n"
        f"{body}"
    )


def rendered() -> dict[str, str]:
    return {
        "alerts.yaml": _rules_yaml(),
        "dashboard.json": json.dumps(dashboard(), indent=2) + "\n",
    }


def write() -> list[Path]:
    MONITORING.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered().items():
        path = MONITORING / name
        path.write_text(text)
        paths.append(path)
    return paths
