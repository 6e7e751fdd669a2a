"""Runs services as separate processes, the way they run in production."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
READY = "FastStream app started successfully"


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    http_port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Fleet:
    log_dir: Path
    env: dict[str, str]
    running: list[ServiceProcess] = field(default_factory=list)
    _counter: int = 0

    def start(
        self, name: str, *, wait: bool = True, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        self._counter += 1
        log = self.log_dir / f"{name}-{self._counter}.log"
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "services", "run", name],
            cwd=ROOT,
            env={**os.environ, **self.env, "BACKORDER_HTTP_PORT": str(port), **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        service = ServiceProcess(name=name, process=process, log=log, http_port=port)
        self.running.append(service)
        if wait:
            self.wait_ready(service)
        return service

    def wait_ready(self, service: ServiceProcess, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while READY not in service.output():
            if not service.alive:
                raise RuntimeError(f"{service.name} exited:\n{service.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.name} not ready:\n{service.output()[-3000:]}")
            time.sleep(0.2)

    def first(self, name: str) -> ServiceProcess:
        return next(s for s in self.running if s.name == name)

    def kill(self, service: ServiceProcess) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or committed."""
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(timeout=30)
        self.running.remove(service)

    def stop(self, service: ServiceProcess) -> None:
        service.process.terminate()
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
        self.running.remove(service)

    def stop_all(self) -> None:
        for service in list(self.running):
            self.stop(service)
