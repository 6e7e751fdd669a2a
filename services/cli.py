"""`backorder`: run a service, create the topics, play the demo."""

import asyncio
import logging

import typer

from shared.settings import get_settings

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


@topics_app.command("create")
def create_topics() -> None:
    """Create every declared topic that is missing (dead-letter topics included)."""
    from shared.messaging.topics import ensure_topics

    settings = get_settings()
    created = asyncio.run(
        ensure_topics(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            partitions=settings.topic_partitions,
        )
    )
    typer.echo(f"created {len(created)} topic(s)" + (f": {', '.join(created)}" if created else ""))


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
