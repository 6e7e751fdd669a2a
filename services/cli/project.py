"""The project as a whole: its demo and its generated documents."""

import typer

from shared.settings import get_settings


def demo() -> None:
    """Play the demo scenario against running services and print each order's timeline."""
    from services import demo as scenario

    scenario.main(get_settings())


def docs() -> None:
    """Regenerate docs/topics.md, docs/asyncapi.json and deploy/k8s/ from the code."""
    from services import docs, manifests

    for path in [*docs.write(), *manifests.write()]:
        typer.echo(f"wrote {path}")
