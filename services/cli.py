"""`backorder`: run a service, create the topics, play the demo."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

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


@app.command()
def run(service: str = typer.Argument(..., help="order, inventory, allocator or notifier")) -> None:
    """Run one service in the foreground until SIGINT or SIGTERM."""
    from services.bootstrap import SERVICES, create_app

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"
    )

    async def serve() -> None:
        # The Kafka clients bind to the running loop, so the app is built inside it.
        await create_app(service).run()

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

    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap_servers)
    await admin.start()
    try:
        return await action(admin, _declared())
    finally:
        await admin.close()


@app.command()
def demo() -> None:
    """Play the demo scenario against running services and print each order's timeline."""
    from services import demo as scenario

    scenario.main(get_settings().kafka_bootstrap_servers)


@app.command()
def docs() -> None:
    """Regenerate docs/topics.md and docs/asyncapi.json from the code."""
    from services.docs import write

    for path in write():
        typer.echo(f"wrote {path}")
