"""``lakehouse serve``: the data service (FastAPI on uvicorn) over the published tables."""

from __future__ import annotations

import click


@click.command(name="serve")
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="LAKEHOUSE_API_HOST",
    show_default=True,
    show_envvar=True,
    help="Interface to listen on.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    envvar="LAKEHOUSE_API_PORT",
    show_default=True,
    show_envvar=True,
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def command(host: str, port: int, log_level: str) -> None:
    """Serve the published tables over HTTP, per API key and role, masked as the policy says.

    Docs at http://HOST:PORT/docs. Keys: `lakehouse api-key create --role ROLE`. Settings:
    LAKEHOUSE_API_* variables (see the README), storage and policy as for the pipeline.
    """
    # Imported here: `lakehouse --help` should not pay for FastAPI, DuckDB and pyarrow.
    import uvicorn
    from pydantic import ValidationError

    from lakehouse.service.app import create_app
    from lakehouse.service.settings import ServiceSettings

    try:
        settings = ServiceSettings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid LAKEHOUSE_API_* setting: {exc}") from None
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # ours (JSON, no raw paths of masked roles) replaces uvicorn's
        server_header=False,
        proxy_headers=False,
    )
