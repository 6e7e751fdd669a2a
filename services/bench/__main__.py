"""`python -m services.bench`: runs the phases against running services (those `deploy/bin/stack
bench` started on its own broker and database, or `stack up`'s), and prints the table
(Markdown, ready for docs/performance.md)."""

import asyncio
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import typer

from services.bench import floor
from services.bench.drive import Shop, Watcher
from services.bench.hot import hot_sku
from services.bench.phases import Bench, intake_and_fill, steady, warm_up
from services.bench.processes import Usage, usage_of
from services.bench.restarts import restart, services, start
from services.bench.stats import Figure, table
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.messaging.connection import kafka_options
from shared.settings import get_settings

app = typer.Typer(add_completion=False)
PHASES = ("intake", "steady", "hot", "start", "restart")


@app.command()
def run(
    orders: int = typer.Option(20_000, help="orders of 1-3 lines in the intake burst"),
    skus: int = typer.Option(1_000, help="SKUs the burst spreads over"),
    steady_rate: float = typer.Option(1_000, help="events/s in the steady phase"),
    steady_seconds: float = typer.Option(60, help="length of the steady phase"),
    hot_lines: int = typer.Option(1_000_000, help="waiting lines of the hot SKU"),
    phases: str = typer.Option(",".join(PHASES), help="which phases, comma-separated"),
    timeout: float = typer.Option(3_600, help="longest wait for one phase, seconds"),
    state_dir: Path = typer.Option(Path(".stack"), help="where the services' pid files are kept"),
) -> None:
    """Intake and fill, steady stream, hot SKU, start and restart; RSS and CPU of every
    service (up to the start phase, which replaces the processes)."""
    chosen = [p.strip() for p in phases.split(",") if p.strip()]
    unknown = set(chosen) - set(PHASES)
    if unknown:
        raise typer.BadParameter(f"unknown phases {sorted(unknown)}; choose from {PHASES}")
    kafka = kafka_options(get_settings())
    asyncio.run(floor.prepare(kafka))
    hops = [
        subprocess.Popen([sys.executable, "-m", "services.bench.floor", str(n)])
        for n in range(1, floor.HOPS + 1)
    ]
    try:
        figures, usage = asyncio.run(
            _run(
                kafka, chosen, orders, skus, steady_rate, steady_seconds, hot_lines, timeout,
                _pids(state_dir) | {f"floor hop {n}": p.pid for n, p in enumerate(hops, 1)},
                state_dir,
            )
        )  # fmt: skip
    finally:
        for hop in hops:
            hop.terminate()
            hop.wait(timeout=30)
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(table(figures))
    print()
    print("| process | RSS at the end (MB) | peak RSS (MB) | CPU seconds |")
    print("| --- | --- | --- | --- |")
    for name, used in usage.items():
        print(f"| {name} | {used.rss_mb:.0f} | {used.peak_rss_mb:.0f} | {used.cpu_seconds:.1f} |")


async def _run(
    kafka: dict[str, Any], chosen: list[str], orders: int, skus: int, steady_rate: float,
    steady_seconds: float, hot_lines: int, timeout: float, pids: dict[str, int],
    state_dir: Path,
) -> tuple[list[Figure], dict[str, Usage]]:  # fmt: skip
    shop = Shop(kafka)
    status = Watcher(kafka, ORDERS_STATUS_CHANGED.name)
    floor_out = Watcher(kafka, floor.TOPICS[-1])
    db = await asyncpg.connect(floor.dsn(), ssl=False)
    await shop.start()
    await status.start()
    await floor_out.start()
    bench = Bench(kafka=kafka, shop=shop, status=status, floor_out=floor_out, timeout=timeout)
    figures: list[Figure] = []
    before = {name: usage_of(pid) for name, pid in pids.items()}
    try:
        await warm_up(bench)
        if "intake" in chosen:
            figures += _shown(await intake_and_fill(bench, order_count=orders, sku_count=skus))
        if "steady" in chosen:
            figures += _shown(await steady(bench, rate=steady_rate, seconds=steady_seconds))
        if "hot" in chosen:
            figures += _shown(await hot_sku(db, shop, status, lines=hot_lines, timeout=timeout))
        after = {name: usage_of(pid) for name, pid in pids.items()}
        # One view of the processes for both phases: the first restarts them as its children.
        fleet = services(state_dir)
        if "start" in chosen:
            figures += _shown(await start(bench, fleet))
        if "restart" in chosen:
            figures += _shown(await restart(bench, fleet))
    finally:
        await floor_out.stop()
        await status.stop()
        await shop.stop()
        await db.close()
    return figures, {name: after[name].since(before[name]) for name in pids}


def _shown(figures: list[Figure]) -> list[Figure]:
    """Each phase's figures as soon as it ends: a later phase that fails loses nothing."""
    print(table(figures), flush=True)
    return figures


def _pids(state_dir: Path) -> dict[str, int]:
    found = {}
    for pid_file in sorted((state_dir / "services").glob("*.pid")):
        if pid_file.stem != "api":
            found[pid_file.stem] = int(pid_file.read_text().strip())
    if not found:
        raise typer.BadParameter(f"no services running (no pid files in {state_dir}/services)")
    return found


if __name__ == "__main__":
    app()
