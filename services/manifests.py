"""Kubernetes manifests generated from the code: the services, their probes and settings, and the
topics as Strimzi `KafkaTopic` resources from the one topic declaration. `backorder docs`
writes them to `deploy/k8s/`; a test fails when they are stale."""

from pathlib import Path
from typing import Any

import yaml

from services.bootstrap import SERVICES
from shared.contracts.topics import ALL_TOPICS, all_specs

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
IMAGE = "backorder:latest"
HTTP_PORT = 8080
PRODUCTION_REPLICATION = 3
STRIMZI_CLUSTER = "backorder-kafka"


def useful_replicas(service: str) -> int:
    """A consumer group uses at most one instance per partition of the topics it reads."""
    counts = [t.partitions for t in ALL_TOPICS if service in t.consumers]
    return min(counts) if counts else 1


def _probe(path: str, period: int, failures: int = 3) -> dict[str, Any]:
    # /health/ready waits up to 2 s for each of Kafka and PostgreSQL.
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def deployment(service: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "backorder", "app.kubernetes.io/component": service}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"backorder-{service}", "labels": labels},
        "spec": {
            "replicas": min(2, useful_replicas(service)),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(HTTP_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {
                            "name": service,
                            "image": IMAGE,
                            "args": ["run", service],
                            "ports": [{"name": "http", "containerPort": HTTP_PORT}],
                            "envFrom": [
                                {"configMapRef": {"name": "backorder-config"}},
                                {"secretRef": {"name": "backorder-secrets"}},
                            ],
                            # The port opens once the broker and database were reached at
                            # start; give an outage at start-up time before liveness counts.
                            "startupProbe": _probe("/health/live", 5, failures=60),
                            "livenessProbe": _probe("/health/live", 10),
                            "readinessProbe": _probe("/health/ready", 5),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }


def migrations_job() -> dict[str, Any]:
    """The prestart step: run before a rollout that carries new migrations."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "backorder-migrate"},
        "spec": {
            "backoffLimit": 3,
            "template": {
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [
                        {
                            "name": "migrate",
                            "image": IMAGE,
                            "command": ["alembic", "-c", "deploy/alembic.ini", "upgrade", "head"],
                            "envFrom": [
                                {"configMapRef": {"name": "backorder-config"}},
                                {"secretRef": {"name": "backorder-secrets"}},
                            ],
                        }
                    ],
                }
            },
        },
    }


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "backorder-config"},
        "data": {
            "KAFKA_BOOTSTRAP_SERVERS": f"{STRIMZI_CLUSTER}-kafka-bootstrap:9092",
            "BACKORDER_HTTP_HOST": "0.0.0.0",
            "BACKORDER_HTTP_PORT": str(HTTP_PORT),
            "BACKORDER_DEFAULT_BACKORDERS": "allow",
        },
    }


def kafka_topics() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaTopic",
            "metadata": {
                "name": spec.name.replace(".", "-"),
                "labels": {"strimzi.io/cluster": STRIMZI_CLUSTER},
            },
            "spec": {
                "topicName": spec.name,
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "config": dict(spec.config),
            },
        }
        for spec in all_specs(replication_factor=PRODUCTION_REPLICATION)
    ]


def _documents(docs: list[dict[str, Any]], header: str) -> str:
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in docs)
    return (
        f"# {header}\n# Generated by `backorder docs` from the code; do not edit by hand.\n{body}"
    )


def rendered() -> dict[str, str]:
    return {
        "services.yaml": _documents(
            [config_map(), migrations_job(), *(deployment(name) for name in SERVICES)],
            "The four services, their configuration and the migration job.",
        ),
        "kafka-topics.yaml": _documents(
            kafka_topics(), "Every topic as a Strimzi KafkaTopic (replication factor 3)."
        ),
    }


def write() -> list[Path]:
    K8S.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered().items():
        path = K8S / name
        path.write_text(text)
        paths.append(path)
    return paths
