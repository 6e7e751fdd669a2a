"""`backorder topics`: the declared topics applied to the cluster, and compared with it."""

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import declared_topics, with_admin

app = typer.Typer(no_args_is_help=True, help="Kafka topics.")


@app.command("apply")
def apply_topics(
    raise_partitions: bool = typer.Option(
        False, "--raise-partitions", help="Add partitions where the declaration has more."
    ),
) -> None:
    """Create missing topics, set a declared max.message.bytes that differs; report drift
    (partitions, replication, other config) it does not fix."""
    from shared.messaging.topic_admin import apply

    report = asyncio.run(
        with_admin(lambda admin, specs: apply(admin, specs, raise_partitions=raise_partitions))
    )
    console = Console()
    for name in report.created:
        console.print(f"[green]created[/green] {name}")
    for name in report.raised:
        console.print(f"[green]raised partitions of[/green] {name}")
    for line in report.configured:
        console.print(f"[green]configured[/green] {line}")
    for line in report.warnings:
        console.print(f"[yellow]warning[/yellow] {line}")
    for line in report.drift:
        console.print(f"[red]drift[/red] {line}")
    if not report.changed:
        console.print("no changes")


@app.command("describe")
def describe_topics() -> None:
    """Every declared topic as the cluster has it, beside the declaration."""
    from shared.messaging.topic_admin import describe

    states = asyncio.run(with_admin(describe))
    table = Table("topic", "partitions", "replicas", "config")
    for spec in declared_topics():
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
