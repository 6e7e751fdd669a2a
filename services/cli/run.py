"""Processes in the foreground: one service, or the look-up API."""

import asyncio

import typer

from shared.settings import get_settings


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
