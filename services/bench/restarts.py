"""The start and restart phases: how long the flow stalls when services start, or when one is
killed and started again as the stack starts it (the same command, environment and name)."""

import asyncio
import json
import os
import signal
import statistics
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.bench.drive import Order, unique
from services.bench.phases import Bench
from services.bench.stats import Figure
from shared.messaging.subscriptions import SESSION_TIMEOUT_MS

REPEATS = 3
SESSION_TIMEOUT_S = SESSION_TIMEOUT_MS / 1000


@dataclass
class Service:
    """A running service as its pid file names it, with what it takes to start it again."""

    name: str
    pid_file: Path
    # Once this phase started it again: our child, to be reaped when it stops.
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    @property
    def log(self) -> Path:
        return self.pid_file.with_suffix(".log")

    def stop(self, sig: signal.Signals) -> tuple[list[str], dict[str, str], str]:
        """Stops the process with `sig` and returns its command, environment and directory."""
        pid = self.pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        env = dict(
            entry.split("=", 1)
            for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
            if "=" in entry
        )
        cwd = os.readlink(f"/proc/{pid}/cwd")
        os.kill(pid, sig)
        if self.process is not None:
            self.process.wait(timeout=30)
        else:
            _wait_gone(pid)
        return argv, env, cwd

    def start(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        with self.log.open("ab") as log:
            self.process = process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        # `stack bench-down` stops whatever the pid file names.
        self.pid_file.write_text(f"{process.pid}\n")

    def ready_url(self, since: int) -> str | None:
        """Its /health/ready once the process started after log offset `since` said its port."""
        with self.log.open("rb") as log:
            log.seek(since)
            for line in log:
                if b"Uvicorn running on" in line:
                    message: str = json.loads(line)["message"]
                    return message.split("running on ", 1)[1].split()[0] + "/health/ready"
        return None


def services(state_dir: Path) -> dict[str, Service]:
    return {
        pid_file.stem: Service(pid_file.stem, pid_file)
        for pid_file in sorted((state_dir / "services").glob("*.pid"))
        if pid_file.stem != "api"
    }


async def start(bench: Bench, fleet: dict[str, Service]) -> list[Figure]:
    """All services stopped, their groups left empty, and started again; from the moment the
    last reports ready, one order on a new SKU until its first status. The floor: the same
    order with nothing restarted."""
    print("start: every service stopped and started again, then one order", flush=True)
    stalls, warm = [], []
    for _ in range(REPEATS):
        warm.append(await _first_status(bench, unique("bs")))
        commands = {name: s.stop(signal.SIGTERM) for name, s in fleet.items()}
        # A stopped static member stays in its group until its session times out: waiting that
        # long makes this a new start, into empty groups, as `stack up` after a while is.
        await asyncio.sleep(SESSION_TIMEOUT_S + 1)
        offsets = {name: s.log.stat().st_size for name, s in fleet.items()}
        for name, service in fleet.items():
            service.start(*commands[name])
        await asyncio.gather(*(_ready(s, offsets[s.name], bench.timeout) for s in fleet.values()))
        stalls.append(await _first_status(bench, unique("bs")))
    return [
        Figure("start: last service ready -> first order's first status (median of 3)", "ms",
               1000 * statistics.median(stalls), 1000 * statistics.median(warm), False),
    ]  # fmt: skip


async def restart(bench: Bench, fleet: dict[str, Service], victim: str = "order") -> list[Figure]:
    """The order service SIGKILLed and started again at once; an order published at the kill
    until its first status. The floor: the same order with nothing killed."""
    print(f"restart: the {victim} service SIGKILLed and started again", flush=True)
    stalls, warm = [], []
    service = fleet[victim]
    for _ in range(REPEATS):
        warm.append(await _first_status(bench, unique("bk")))
        killed = time.monotonic()
        service.start(*service.stop(signal.SIGKILL))
        order_id = unique("bk")
        await _first_status(bench, order_id)
        stalls.append(bench.status.orders[order_id].first - killed)
    return [
        Figure(f"restart: {victim} SIGKILLed and restarted -> first status (median of 3)", "ms",
               1000 * statistics.median(stalls), 1000 * statistics.median(warm), False),
    ]  # fmt: skip


async def _first_status(bench: Bench, order_id: str) -> float:
    order = Order(order_id, [(unique("BK"), 1)])
    await bench.shop.place([order])
    await bench.status.until(
        lambda: order.order_id in bench.status.orders, what="a warm order",
        timeout=bench.timeout, progress=lambda: "waiting for the first status",
    )  # fmt: skip
    return bench.status.orders[order.order_id].first - bench.shop.published[order.order_id]


async def _ready(service: Service, since: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = service.ready_url(since)
        if url is not None and await asyncio.to_thread(_answers, url):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{service.name} not ready within {timeout:g}s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_gone(pid: int) -> None:
    """For a process the stack started: not our child, so there is nothing to reap."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise TimeoutError(f"process {pid} did not stop")
