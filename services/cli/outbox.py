"""`backorder outbox`: the transactional outbox's rows that need an operator."""

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import read_database

app = typer.Typer(no_args_is_help=True, help="The transactional outbox.")


@app.command("parked")
def parked(
    source: str | None = typer.Option(None, "--source", help="only this service's rows"),
    limit: int = typer.Option(100, "--limit", min=1),
) -> None:
    """Outbox rows the broker refused for good (too large, say), kept with the reason."""
    from services.ops.parked import parked_rows

    rows = read_database(lambda session: parked_rows(session, source=source, limit=limit))
    table = Table("id", "source", "topic", "key", "bytes", "parked at", "reason")
    for row in rows:
        table.add_row(
            str(row.id), row.source, row.topic, row.key, str(row.size), str(row.parked_at),
            row.reason,
        )  # fmt: skip
    Console().print(table)
