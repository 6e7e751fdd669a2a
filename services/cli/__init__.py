"""`backorder`, the operator's command line: one module per concern, composed here.

`services.cli:app` is the `backorder` console script and `python -m services`."""

import typer

from services.cli import dead_letters, lag, lookups, outbox, project, run, topics

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="The backorder service's command line.",
)
app.command()(run.run)
app.add_typer(topics.app, name="topics")
app.add_typer(outbox.app, name="outbox")
app.command()(project.demo)
app.command()(project.docs)
app.add_typer(dead_letters.app, name="dlq")
app.command()(lookups.queue)
app.command()(lookups.order)
app.command()(lookups.demand)
app.command()(run.api)
app.command()(lag.lag)
