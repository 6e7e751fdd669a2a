"""`backorder dlq`: dead letters listed, shown, and replayed once."""

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from shared.contracts.topics import DLQ_SUFFIX
from shared.messaging.connection import kafka_options
from shared.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, replay.")


def _dlq_topic(topic: str) -> str:
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


@app.command("list")
def list_dead_letters(topic: str = typer.Argument(..., help="a topic or its .dlq topic")) -> None:
    """Every retained dead letter of a topic, with its reason."""
    from services.ops.dead_letters import read_all

    letters = asyncio.run(read_all(kafka_options(get_settings()), _dlq_topic(topic)))
    table = Table("address", "key", "value", "reason", title=f"{len(letters)} dead letter(s)")
    for letter in letters:
        key = letter.key.decode(errors="replace") if letter.key else ""
        table.add_row(letter.address, key, letter.value_summary, letter.reason)
    Console().print(table)


@app.command("show")
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
    notice = letter.truncation_notice()
    if notice:
        console.print(notice, style="bold red", markup=False)
    for name, value in letter.headers:
        console.print(f"[bold]{name}[/bold]: {value.decode(errors='replace')}")
    console.print(letter.value.decode(errors="replace"), markup=False)


@app.command("replay")
def replay_dead_letters(
    topic: str = typer.Argument(..., help="a topic or its .dlq topic"),
    address: list[str] = typer.Option(
        [], "--address", help="only these <dlq topic>/<partition>/<offset> (default: all)"
    ),
) -> None:
    """Send dead letters back to their topic, marked `replayed-from`; each one only once.
    Truncated ones (an excerpt of an oversized record) are refused: the exit status is 1."""
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
        for refused in report.refused:
            typer.echo(
                f"refused {refused}: truncated, it holds only an excerpt of the record "
                "(`backorder dlq show` says where the whole record is)",
                err=True,
            )
        if report.refused:
            raise typer.Exit(1)

    asyncio.run(run())
