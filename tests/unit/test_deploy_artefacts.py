"""The deployable artefacts say what the code says: same services, commands, settings, topics."""

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from services.bootstrap import SERVICES
from services.cli import app
from services.manifests import K8S, rendered, useful_replicas
from shared.contracts.topics import all_specs
from shared.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"BACKORDER_{name.upper()}")
        alias = field.validation_alias
        names.update(getattr(alias, "choices", []) or [])
    return names


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_generated_kubernetes_manifests_are_current() -> None:
    for name, text in rendered().items():
        assert (K8S / name).read_text() == text, "run `backorder docs`"


def test_kubernetes_runs_every_service_with_probes_and_bounded_replicas() -> None:
    docs = list(yaml.safe_load_all((K8S / "services.yaml").read_text()))
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {f"backorder-{name}" for name in SERVICES}
    for name in SERVICES:
        spec = deployments[f"backorder-{name}"]["spec"]
        container = spec["template"]["spec"]["containers"][0]
        assert container["args"] == ["run", name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert 1 <= spec["replicas"] <= useful_replicas(name)
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert set(config["data"]) <= setting_names()


def test_strimzi_topics_are_the_declared_topics() -> None:
    topics = list(yaml.safe_load_all((K8S / "kafka-topics.yaml").read_text()))
    declared = {s.name: s for s in all_specs()}
    assert {t["spec"]["topicName"] for t in topics} == set(declared)
    for topic in topics:
        spec = declared[topic["spec"]["topicName"]]
        assert topic["spec"]["partitions"] == spec.partitions
        assert topic["spec"]["config"] == spec.config


def test_compose_runs_the_same_commands_and_settings() -> None:
    services = compose()["services"]
    for name in SERVICES:
        assert services[name]["command"] == ["run", name]
        assert set(services[name]["environment"]) <= setting_names()
    assert services["topics"]["command"] == ["topics", "apply"]
    assert services["migrate"]["command"][:3] == ["alembic", "-c", "deploy/alembic.ini"]
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"]  # KRaft, no ZooKeeper


def test_every_command_the_artefacts_use_exists() -> None:
    runner = CliRunner()
    for args in (["run", "--help"], ["topics", "apply", "--help"]):
        assert runner.invoke(app, args).exit_code == 0, args


def test_the_image_starts_the_command_line() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["backorder"]' in dockerfile
    assert "BACKORDER_HTTP_PORT=8080" in dockerfile
