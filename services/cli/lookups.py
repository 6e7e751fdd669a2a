"""Look-ups in the services' tables: a SKU's queue, an order, the demand report. `--json`
prints what the look-up API answers for the same question."""

import json

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from services.cli.common import read_database
from services.ops.views import DemandRow
from shared.settings import get_settings

JSON_OPTION = typer.Option(False, "--json", help="as the look-up API answers it, in JSON")


def queue(sku: str = typer.Argument(..., help="the SKU"), as_json: bool = JSON_OPTION) -> None:
    """A SKU's book: stock on hand, policy, and its queue in the order it is served (highest
    priority rank first, then arrival)."""
    from datetime import UTC, datetime

    from services.ops.queries import sku_queue, waited

    book = read_database(lambda session: sku_queue(session, sku=sku))
    if book is None:
        typer.echo(f"no SKU {sku} has been seen", err=True)
        raise typer.Exit(1)
    default = get_settings().default_backorders
    if as_json:
        typer.echo(book.in_force(default_backorders=default).model_dump_json(indent=2))
        return
    backorders = book.policy.backorders if book.policy else f"default ({default})"
    console = Console()
    console.print(
        f"[bold]{sku}[/bold]: {book.available} on hand unheld, {book.received_total} "
        f"received in all; backorders {backorders}"
    )
    # The rest of the SKU's own policy, as the shop writes it: only what it sets.
    if book.policy:
        for name, value in book.policy.model_dump(
            mode="json", exclude_defaults=True, exclude={"backorders"}
        ).items():
            console.print(f"  {name}: {_shown(value)}", markup=False)
    now = datetime.now(UTC)
    # Priorities are shown only where some order asked for one, or aging lifted a line.
    ranked = any(row.priority or row.rank for row in book.queue)
    columns = ["#", "order", "line", "quantity", "reserved", "waiting", "waited"]
    table = Table(*columns, *(["priority", "rank"] if ranked else []))
    for row in book.queue:
        cells = [
            str(row.position),
            row.order_id,
            row.line_id,
            str(row.quantity),
            str(row.allocated),
            str(row.waiting),
            waited(row.placed_at, now),
        ]
        table.add_row(*cells, *([row.priority or "default", str(row.rank)] if ranked else []))
    console.print(table)


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value if isinstance(value, str) else json.dumps(value)


def order(
    order_id: str = typer.Argument(..., help="the order id"), as_json: bool = JSON_OPTION
) -> None:
    """An order's current state, line by line, and whom it belongs to."""
    from services.ops.queries import order_state

    state = read_database(lambda session: order_state(session, order_id=order_id))
    if state is None:
        typer.echo(f"no order {order_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(state.public().model_dump_json(indent=2))
        return
    console = Console()
    console.print(
        f"[bold]{order_id}[/bold] {state.status or 'awaiting decisions'} "
        f"(version {state.version}), placed {state.placed_at:%Y-%m-%d %H:%M} by "
        f"{state.customer_email}" + (f", priority {state.priority}" if state.priority else "")
    )
    table = Table("line", "sku", "qty", "reserved", "waiting", "rejected", "status", "#", "reason")
    for line in state.lines:
        table.add_row(
            line.line_id,
            line.sku,
            str(line.quantity),
            str(line.allocated),
            str(line.backordered),
            str(line.rejected),
            line.status or "",
            str(line.queue_position or ""),
            line.reason or "",
        )
    console.print(table)


_DEMAND_ROWS = TypeAdapter(list[DemandRow])


def demand(
    limit: int = typer.Option(50, min=1, help="SKUs shown, largest shortfall first"),
    csv_output: bool = typer.Option(False, "--csv", help="CSV on standard output"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Demand report for purchasing: per SKU, what waits, since when, what is scheduled to
    arrive and the shortfall no purchase order covers yet. Purchase orders past their
    expected date are shown as overdue and do not cover the shortfall."""
    import csv
    import sys
    from datetime import UTC, datetime

    from services.ops.queries import demand_report, waited

    rows = read_database(lambda session: demand_report(session, limit=limit))
    if as_json:
        typer.echo(_DEMAND_ROWS.dump_json(rows, indent=2).decode())
        return
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
        "overdue_pos",
        "overdue_units",
        "overdue_since",
    ]
    records = [
        [
            row.sku,
            str(row.waiting_lines),
            str(row.waiting_units),
            waited(row.oldest_since, now),
            row.oldest_since.isoformat(),
            str(row.scheduled_supply),
            row.next_expected.isoformat() if row.next_expected else "",
            str(row.shortfall),
            str(row.overdue_pos),
            str(row.overdue_units),
            row.overdue_since.isoformat() if row.overdue_since else "",
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
