"""`backorder`: run a service, create the topics, play the demo."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from shared.messaging.connection import kafka_options
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.contracts.topics import TopicSpec

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="The backorder service's command line.",
)
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics.")
app.add_typer(topics_app, name="topics")
outbox_app = typer.Typer(no_args_is_help=True, help="The transactional outbox.")
app.add_typer(outbox_app, name="outbox")


@app.command()
def run(service: str = typer.Argument(..., help="order, inventory, allocator or notifier")) -> None:
    """Run one service in the foreground until SIGINT or SIGTERM."""
    from services.bootstrap import SERVICES, create_app

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    from shared.logs import configure_logging

    settings = get_settings()
    configure_logging(service, fmt=settings.log_format)

    async def serve() -> None:
        # The Kafka clients bind to the running loop, so the app is built inside it.
        await create_app(service, settings).run(
            run_extra_options={
                "host": settings.http_host,
                "port": settings.http_port,
                "log_config": None,  # keep the JSON logging configured above
            }
        )

    asyncio.run(serve())


@topics_app.command("apply")
def apply_topics(
    raise_partitions: bool = typer.Option(
        False, "--raise-partitions", help="Add partitions where the declaration has more."
    ),
) -> None:
    """Create missing topics; report drift (partitions, replication, config) it does not fix."""
    from shared.messaging.topic_admin import apply

    report = asyncio.run(
        _with_admin(lambda admin, specs: apply(admin, specs, raise_partitions=raise_partitions))
    )
    console = Console()
    for name in report.created:
        console.print(f"[green]created[/green] {name}")
    for name in report.raised:
        console.print(f"[green]raised partitions of[/green] {name}")
    for line in report.warnings:
        console.print(f"[yellow]warning[/yellow] {line}")
    for line in report.drift:
        console.print(f"[red]drift[/red] {line}")
    if not report.changed:
        console.print("no changes")


@topics_app.command("describe")
def describe_topics() -> None:
    """Every declared topic as the cluster has it, beside the declaration."""
    from shared.messaging.topic_admin import describe

    states = asyncio.run(_with_admin(describe))
    table = Table("topic", "partitions", "replicas", "config")
    for spec in _declared():
        state = states.get(spec.name)
        if state is None:
            table.add_row(spec.name, "[red]missing[/red]", "", "")
            continue
        table.add_row(
            spec.name,
            f"{state.partitions} (declared {spec.partitions})",
            f"{state.replication_factor} (declared {spec.replication_factor})",
            ", ".join(f"{k}={v}" for k, v in sorted(state.config.items())),
        )
    Console().print(table)


def _declared() -> "list[TopicSpec]":
    from shared.contracts.topics import all_specs

    return all_specs(replication_factor=get_settings().topic_replication_factor)


async def _with_admin(action: "Callable[[Any, list[TopicSpec]], Awaitable[T]]") -> T:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_options(get_settings()))
    await admin.start()
    try:
        return await action(admin, _declared())
    finally:
        await admin.close()


@app.command()
def demo() -> None:
    """Play the demo scenario against running services and print each order's timeline."""
    from services import demo as scenario

    scenario.main(get_settings())


@app.command()
def docs() -> None:
    """Regenerate docs/topics.md, docs/asyncapi.json and deploy/k8s/ from the code."""
    from services import docs, manifests

    for path in [*docs.write(), *manifests.write()]:
        typer.echo(f"wrote {path}")


dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, replay.")
app.add_typer(dlq_app, name="dlq")


def _dlq_topic(topic: str) -> str:
    from shared.contracts.topics import DLQ_SUFFIX

    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


@dlq_app.command("list")
def list_dead_letters(topic: str = typer.Argument(..., help="a topic or its .dlq topic")) -> None:
    """Every retained dead letter of a topic, with its reason."""
    from services.ops.dead_letters import read_all

    letters = asyncio.run(read_all(kafka_options(get_settings()), _dlq_topic(topic)))
    table = Table("address", "key", "reason", title=f"{len(letters)} dead letter(s)")
    for letter in letters:
        key = letter.key.decode(errors="replace") if letter.key else ""
        table.add_row(letter.address, key, letter.reason)
    Console().print(table)


@dlq_app.command("show")
def show_dead_letter(
    address: str = typer.Argument(..., help="<dlq topic>/<partition>/<offset>"),
) -> None:
    """One dead letter: headers and the original value."""
    from services.ops.dead_letters import read_all

    topic = address.split("/", 1)[0]
    letters = asyncio.run(read_all(kafka_options(get_settings()), topic))
    letter = next((d for d in letters if d.address == address), None)
    if letter is None:
        raise typer.BadParameter(f"no dead letter at {address}")
    console = Console()
    for name, value in letter.headers:
        console.print(f"[bold]{name}[/bold]: {value.decode(errors='replace')}")
    console.print(letter.value.decode(errors="replace"), markup=False)


@dlq_app.command("replay")
def replay_dead_letters(
    topic: str = typer.Argument(..., help="a topic or its .dlq topic"),
    address: list[str] = typer.Option(
        [], "--address", help="only these <dlq topic>/<partition>/<offset> (default: all)"
    ),
) -> None:
    """Send dead letters back to their topic, marked `replayed-from`; each one only once."""
    from rich.progress import Progress

    from services.ops.dead_letters import read_all, replay
    from shared.db.engine import make_engine, make_session_factory
    from shared.messaging.producer import make_producer

    settings = get_settings()

    async def run() -> None:
        letters = await read_all(kafka_options(settings), _dlq_topic(topic))
        if address:
            letters = [d for d in letters if d.address in address]
        engine = make_engine(settings, pool_size=1)
        producer = make_producer(settings)
        await producer.start()
        try:
            with Progress() as progress:
                task = progress.add_task("replaying", total=len(letters))
                report = await replay(
                    letters,
                    producer=producer,
                    session_factory=make_session_factory(engine),
                    progress=lambda: progress.advance(task),
                )
        finally:
            await producer.stop()
            await engine.dispose()
        typer.echo(
            f"replayed {len(report.replayed)}, skipped {len(report.skipped)} already replayed"
        )

    asyncio.run(run())


def _read(query: "Callable[[Any], Awaitable[T]]") -> T:
    from shared.db.engine import make_engine, make_session_factory

    async def run() -> T:
        engine = make_engine(get_settings(), pool_size=1)
        try:
            async with make_session_factory(engine)() as session:
                return await query(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@outbox_app.command("parked")
def parked(
    source: str | None = typer.Option(None, "--source", help="only this service's rows"),
    limit: int = typer.Option(100, "--limit", min=1),
) -> None:
    """Outbox rows the broker refused for good (too large, say), kept with the reason."""
    from services.ops.parked import parked_rows

    rows = _read(lambda session: parked_rows(session, source=source, limit=limit))
    table = Table("id", "source", "topic", "key", "bytes", "parked at", "reason")
    for row in rows:
        table.add_row(
            str(row.id), row.source, row.topic, row.key, str(row.size), str(row.parked_at),
            row.reason,
        )  # fmt: skip
    Console().print(table)


@app.command()
def queue(sku: str = typer.Argument(..., help="the SKU")) -> None:
    """A SKU's book: stock on hand, policy, and its queue in arrival order."""
    from datetime import UTC, datetime

    from services.ops.queries import sku_queue, waited

    book = _read(lambda session: sku_queue(session, sku=sku))
    if book is None:
        typer.echo(f"no SKU {sku} has been seen", err=True)
        raise typer.Exit(1)
    policy = book["backorders"] or f"default ({get_settings().default_backorders})"
    limit = book["max_backorder_quantity"]
    console = Console()
    console.print(
        f"[bold]{sku}[/bold]: {book['available']} on hand unheld, {book['received_total']} "
        f"received in all; backorders {policy}" + (f", at most {limit} waiting" if limit else "")
    )
    now = datetime.now(UTC)
    table = Table("#", "order", "line", "quantity", "reserved", "waiting", "waited")
    for row in book["queue"]:
        table.add_row(
            str(row["position"]),
            row["order_id"],
            row["line_id"],
            str(row["quantity"]),
            str(row["allocated"]),
            str(row["waiting"]),
            waited(row["placed_at"], now),
        )
    console.print(table)


@app.command()
def order(order_id: str = typer.Argument(..., help="the order id")) -> None:
    """An order's current state, line by line."""
    from services.ops.queries import order_state

    state = _read(lambda session: order_state(session, order_id=order_id))
    if state is None:
        typer.echo(f"no order {order_id}", err=True)
        raise typer.Exit(1)
    console = Console()
    console.print(
        f"[bold]{order_id}[/bold] {state['status'] or 'awaiting decisions'} "
        f"(version {state['version']}), placed {state['placed_at']:%Y-%m-%d %H:%M} by "
        f"{state['customer_email']}"
    )
    table = Table("line", "sku", "qty", "reserved", "waiting", "rejected", "status", "#", "reason")
    for line in state["lines"]:
        table.add_row(
            line["line_id"],
            line["sku"],
            str(line["quantity"]),
            str(line["allocated"]),
            str(line["backordered"]),
            str(line["rejected"]),
            line["status"] or "",
            str(line["queue_position"] or ""),
            line["reason"] or "",
        )
    console.print(table)


@app.command()
def demand(
    limit: int = typer.Option(50, min=1, help="SKUs shown, largest shortfall first"),
    csv_output: bool = typer.Option(False, "--csv", help="CSV on standard output"),
) -> None:
    """Demand report for purchasing: per SKU, what waits, since when, what is scheduled to
    arrive and the shortfall no purchase order covers yet."""
    import csv
    import sys
    from datetime import UTC, datetime

    from services.ops.queries import demand_report, waited

    rows = _read(lambda session: demand_report(session, limit=limit))
    now = datetime.now(UTC)
    header = [
        "sku",
        "waiting_lines",
        "waiting_units",
        "oldest_wait",
        "oldest_since",
        "scheduled_supply",
        "next_expected",
        "shortfall",
    ]
    records = [
        [
            row["sku"],
            str(row["waiting_lines"]),
            str(row["waiting_units"]),
            waited(row["oldest_since"], now),
            row["oldest_since"].isoformat(),
            str(row["scheduled_supply"]),
            row["next_expected"].isoformat() if row["next_expected"] else "",
            str(row["shortfall"]),
        ]
        for row in rows
    ]
    if csv_output:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(records)
        return
    table = Table(*header, title="Backorder demand")
    for record in records:
        table.add_row(*record)
    Console().print(table)


@app.command()
def api() -> None:
    """Serve the read-only look-up API (OpenAPI at /docs) on BACKORDER_API_PORT."""
    import uvicorn

    from services.api.app import create_api
    from shared.logs import configure_logging

    settings = get_settings()
    configure_logging("api", fmt=settings.log_format)
    uvicorn.run(
        create_api(settings), host=settings.http_host, port=settings.api_port, log_config=None
    )
