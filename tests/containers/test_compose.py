"""deploy/compose.yaml as an operator runs it: up, the demo through Kafka, the mail, down."""

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.demo import EXPECTED, timelines

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "backorder-e2e"
# Only the notifier's coalescing window is shortened (30 s in the file), so the test need
# not wait it out; everything else is the file as shipped.
OVERRIDE = ROOT / "tests" / "containers" / "compose.fast-mail.yaml"
LONG_RUNNING = ("kafka", "postgres", "order", "inventory", "allocator", "notifier", "api", "mail")


def compose_command() -> list[str]:
    """Compose v2 where it exists, else v1 (Debian's docker-compose)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        base = ["docker", "compose"]
    else:
        found = shutil.which("docker-compose")
        assert found, "neither `docker compose` nor `docker-compose` is installed"
        base = [found]
    env_file = ROOT / ".stack" / "images.env"
    files = ["-f", str(ROOT / "deploy" / "compose.yaml"), "-f", str(OVERRIDE)]
    return [*base, "--env-file", str(env_file), *files, "-p", PROJECT]


def compose(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [*compose_command(), *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def health(service: str) -> str:
    container = compose("ps", "-q", service).strip()
    inspect = subprocess.run(
        [
            "docker",
            "inspect",
            "--format",
            "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            container,
        ],
        capture_output=True,
        text=True,
    )
    return inspect.stdout.strip()


@pytest.fixture(scope="module")
def up() -> Iterator[None]:
    compose("down", "-v", "--remove-orphans")
    try:
        compose("up", "-d", "--no-build")
        deadline = time.monotonic() + 240
        while True:
            states = {service: health(service) for service in LONG_RUNNING}
            if all(state in {"running healthy", "running"} for state in states.values()):
                break
            assert time.monotonic() < deadline, (
                f"not healthy: {states}\n{compose('logs', '--tail', '40')}"
            )
            time.sleep(2)
        yield
    finally:
        compose("down", "-v", "--remove-orphans")


def mail_recipients() -> set[str]:
    with urllib.request.urlopen("http://127.0.0.1:8025/api/v1/messages", timeout=5) as response:
        listing = json.load(response)
    return {to["Address"] for message in listing["messages"] for to in message["To"]}


def test_the_demo_runs_through_compose_with_the_native_demos_timelines(up: None) -> None:
    output = compose("run", "--rm", "--no-deps", "-T", "-e", "COLUMNS=250", "order", "demo")
    assert timelines(output) == EXPECTED

    # Every customer of the demo is mailed: Ada, Bob, Cyd and Eve about their mugs, Dan about
    # his refusal, Fay about the cup she took instead.
    customers = {"ada", "bob", "cyd", "dan", "eve", "fay"}
    deadline = time.monotonic() + 60
    while {address.split("@")[0] for address in mail_recipients()} != customers:
        assert time.monotonic() < deadline, f"mail received: {sorted(mail_recipients())}"
        time.sleep(1)
