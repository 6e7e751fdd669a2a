"""Kubernetes manifests generated from the code: the services and the look-up API, their probes,
settings, disruption budgets and hardened pods, the topics as Strimzi `KafkaTopic` resources
from the one topic declaration, and the monitoring (services/monitoring.py) as resources.
`backorder docs` writes them to `deploy/k8s/`; a test fails when they are stale."""

from pathlib import Path
from typing import Any

import yaml

from services import monitoring
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


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "backorder", "app.kubernetes.io/component": component}


# Peak RSS is about 170 MB (the allocator and the notifier, with batches of 500 records);
# requests near the peak, limits with room for a batch of large order pictures.
RESOURCES: dict[str, dict[str, Any]] = {
    "allocator": {"requests": {"cpu": "200m", "memory": "192Mi"}, "limits": {"memory": "512Mi"}},
    "notifier": {"requests": {"cpu": "200m", "memory": "192Mi"}, "limits": {"memory": "512Mi"}},
    "order": {"requests": {"cpu": "100m", "memory": "160Mi"}, "limits": {"memory": "384Mi"}},
    "inventory": {"requests": {"cpu": "100m", "memory": "160Mi"}, "limits": {"memory": "384Mi"}},
    "api": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "migrate": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
}
# The image's user (deploy/Dockerfile).
RUN_AS = 10001
API_TOKEN_SECRET = {"name": "backorder-api", "key": "token"}
_SETTINGS = [
    {"configMapRef": {"name": "backorder-config"}},
    {"secretRef": {"name": "backorder-secrets"}},
]


def _pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A pod that runs as the image's unprivileged user on a read-only root filesystem."""
    hardened = {
        **container,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        **spec,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [hardened],
        # Python and its libraries may want a scratch file; nothing else is written.
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }


def _deployment(component: str, replicas: int, pod: dict[str, Any], **meta: Any) -> dict[str, Any]:
    labels = _labels(component)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"backorder-{component}", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, **meta}, "spec": pod},
        },
    }


def deployment(service: str) -> dict[str, Any]:
    container = {
        "name": service,
        "image": IMAGE,
        "args": ["run", service],
        "ports": [{"name": "http", "containerPort": HTTP_PORT}],
        "envFrom": _SETTINGS,
        # The port opens once the broker and database were reached at
        # start; give an outage at start-up time before liveness counts.
        "startupProbe": _probe("/health/live", 5, failures=60),
        "livenessProbe": _probe("/health/live", 10),
        "readinessProbe": _probe("/health/ready", 5),
        "resources": RESOURCES[service],
    }
    return _deployment(
        service,
        min(2, useful_replicas(service)),
        _pod(container, terminationGracePeriodSeconds=30),
        annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(HTTP_PORT),
            "prometheus.io/path": "/metrics",
        },
    )


def api_deployment() -> dict[str, Any]:
    """The look-up API: stateless, so it scales freely; two replicas ride out a node drain."""
    container = {
        "name": "api",
        "image": IMAGE,
        "args": ["api"],
        "ports": [{"name": "http", "containerPort": HTTP_PORT}],
        "envFrom": _SETTINGS,
        "env": [
            {"name": "BACKORDER_API_PORT", "value": str(HTTP_PORT)},
            {"name": "BACKORDER_API_TOKEN", "valueFrom": {"secretKeyRef": API_TOKEN_SECRET}},
        ],
        # The probes need no token; ready means the database answers, as every look-up
        # reads it.
        "livenessProbe": _probe("/health/live", 10),
        "readinessProbe": _probe("/health/ready", 5),
        "resources": RESOURCES["api"],
    }
    return _deployment("api", 2, _pod(container))


def api_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backorder-api", "labels": _labels("api")},
        "spec": {
            "selector": _labels("api"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def disruption_budget(component: str) -> dict[str, Any]:
    """One instance at a time may be evicted: with a single replica a drain still goes on
    (the consumer group rebalances onto the new pod), with two one keeps serving."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"backorder-{component}", "labels": _labels(component)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(component)}},
    }


def migrations_job() -> dict[str, Any]:
    """The prestart step: run before a rollout that carries new migrations."""
    container = {
        "name": "migrate",
        "image": IMAGE,
        "command": ["alembic", "-c", "deploy/alembic.ini", "upgrade", "head"],
        "envFrom": _SETTINGS,
        "resources": RESOURCES["migrate"],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "backorder-migrate"},
        "spec": {
            "backoffLimit": 3,
            "template": {"spec": _pod(container, restartPolicy="OnFailure")},
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


class _Dumper(yaml.SafeDumper):
    """Writes shared label dicts out in full: anchors and aliases only puzzle a reader."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _documents(docs: list[dict[str, Any]], header: str) -> str:
    body = "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False) for doc in docs)
    return (
        f"# {header}\n# Generated by `backorder docs` from the code; do not edit by hand.\n{body}"
    )


def grafana_dashboard() -> dict[str, Any]:
    """The dashboard for Grafana's sidecar, which loads ConfigMaps labelled grafana_dashboard."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "backorder-dashboard", "labels": {"grafana_dashboard": "1"}},
        "data": {"backorder.json": monitoring.rendered()["dashboard.json"]},
    }


def rendered() -> dict[str, str]:
    services = [
        document for name in SERVICES for document in (deployment(name), disruption_budget(name))
    ]
    return {
        "services.yaml": _documents(
            [config_map(), migrations_job(), *services],
            "The four services, their disruption budgets, configuration and the migration job.",
        ),
        "api.yaml": _documents(
            [api_deployment(), api_service(), disruption_budget("api")],
            "The look-up API; its token comes from the Secret backorder-api (key token).",
        ),
        "kafka-topics.yaml": _documents(
            kafka_topics(), "Every topic as a Strimzi KafkaTopic (replication factor 3)."
        ),
        "monitoring.yaml": _documents(
            [monitoring.prometheus_rule(), grafana_dashboard()],
            "Alert rules (PrometheusRule) and the Grafana dashboard, as in deploy/monitoring/.",
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
