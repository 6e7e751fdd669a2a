"""The deployable artefacts say what the code says: same services, commands, settings, topics."""

import tomllib
from pathlib import Path
from typing import Any

import httpx
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from typer.testing import CliRunner

from services.api.app import create_api
from services.bootstrap import SERVICES
from services.cli import app
from services.manifests import K8S, RUN_AS, rendered, useful_replicas
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


def manifests() -> list[dict[str, Any]]:
    return [
        doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
    ]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


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


def test_kubernetes_serves_the_lookup_api_with_its_token_from_a_secret() -> None:
    deployment = of_kind("Deployment")["backorder-api"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["api"]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) <= setting_names()
    assert "value" not in env["BACKORDER_API_TOKEN"]
    assert env["BACKORDER_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["BACKORDER_API_PORT"]["value"] == str(ports["http"])
    service = of_kind("Service")["backorder-api"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    assert deployment["spec"]["replicas"] >= 2


async def test_the_api_probes_ask_for_what_it_serves_without_a_token() -> None:
    container = of_kind("Deployment")["backorder-api"]["spec"]["template"]["spec"]["containers"][0]
    api = create_api(Settings(api_token="a-token-the-probe-does-not-have"))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        live = await client.get(container["livenessProbe"]["httpGet"]["path"])
        assert live.status_code == 200
        # No database here (the app's start-up did not run): not ready, but not refused.
        ready = await client.get(container["readinessProbe"]["httpGet"]["path"])
        assert ready.status_code == 503, ready.text
        assert (await client.get("/reports/demand")).status_code == 401


def test_every_deployment_has_a_disruption_budget_that_lets_a_drain_go_on() -> None:
    budgets = of_kind("PodDisruptionBudget")
    deployments = of_kind("Deployment")
    assert set(deployments) == {*(f"backorder-{n}" for n in SERVICES), "backorder-api"}
    for name, deployment in deployments.items():
        budget = budgets[name]["spec"]
        assert budget["selector"] == deployment["spec"]["selector"]
        assert budget["maxUnavailable"] == 1


def test_every_pod_runs_unprivileged_on_a_read_only_root() -> None:
    workloads = [*of_kind("Deployment").values(), *of_kind("Job").values()]
    assert len(workloads) == len(SERVICES) + 2
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] in scratch
            assert container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"]


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
    for args in (["run", "--help"], ["topics", "apply", "--help"], ["api", "--help"]):
        assert runner.invoke(app, args).exit_code == 0, args


def test_the_image_starts_the_command_line() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["backorder"]' in dockerfile
    assert "BACKORDER_HTTP_PORT=8080" in dockerfile


def test_the_image_lockfile_pins_a_version_of_every_dependency_that_satisfies_pyproject() -> None:
    """The image installs only from deploy/requirements.lock: a dependency added to
    pyproject.toml but not re-pinned (`deploy/bin/stack lock`) would be missing from it."""
    pinned: dict[str, Version] = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        pin, _, _ = line.partition(" ")
        if "==" in pin and not line.startswith((" ", "#")):
            name, _, version = pin.partition("==")
            pinned[canonicalize_name(name)] = Version(version)
    with (DEPLOY.parent / "pyproject.toml").open("rb") as file:
        declared = tomllib.load(file)["project"]["dependencies"]
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in deploy/requirements.lock: run stack lock"
        assert requirement.specifier.contains(pinned[name]), f"{name} {pinned[name]} vs {text}"
