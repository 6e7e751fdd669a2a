"""`backorder lag`: how far behind each consumer group is, per topic."""

import asyncio

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from shared.messaging.connection import kafka_options
from shared.messaging.lag import GroupLag, LagReader, TopicLag, project_groups
from shared.settings import get_settings

_GROUPS = TypeAdapter(list[GroupLag])

NO_COMMITS = "none: counts from the earliest retained record"


def lag(
    group: str | None = typer.Option(
        None, "--group", help="only this consumer group (default: every group of the project)"
    ),
    as_json: bool = typer.Option(False, "--json", help="per partition, in JSON"),
) -> None:
    """Records each consumer group has still to read: per topic its committed offsets, end
    offsets and lag, partitions summed, and the group's total.

    A group reads from the earliest retained record where it has committed nothing (a new
    group, or a service that never ran), so its lag there is the whole retained topic, and its
    committed column says "none". A group that is not the project's is shown on the topics it
    has committed on."""
    from services.bootstrap import SERVICES

    groups = project_groups(SERVICES)
    wanted = {group: groups.get(group)} if group else dict(groups)

    async def read() -> list[GroupLag]:
        async with LagReader(kafka_options(get_settings())) as reader:
            return [await reader.read(name, topics) for name, topics in wanted.items()]

    lags = asyncio.run(read())
    if as_json:
        typer.echo(_GROUPS.dump_json(lags, indent=2).decode())
        return
    console = Console()
    for found in lags:
        if not found.topics:
            console.print(
                f"[bold]{found.group}[/bold]: nothing to show: no committed offsets,"
                " or its topics do not exist"
            )
            continue
        table = Table("topic", "partitions", "committed", "end", "lag", title=found.group)
        for topic in found.topics:
            table.add_row(
                topic.topic,
                str(len(topic.partitions)),
                _committed(topic),
                str(sum(p.end for p in topic.partitions)),
                str(topic.lag),
            )
        table.add_row("total", "", "", "", str(found.lag), style="bold")
        console.print(table)


def _committed(topic: TopicLag) -> str:
    if not topic.committed:
        return NO_COMMITS
    offsets = [p.committed for p in topic.partitions if p.committed is not None]
    missing = len(topic.partitions) - len(offsets)
    return str(sum(offsets)) + (f" ({missing} partition(s) none)" if missing else "")
