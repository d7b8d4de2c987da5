"""``lakehouse init``: prepare the embedded default once (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command(name="init")
def command() -> None:
    """Initialise the Dagster instance in $DAGSTER_HOME and the data folders, once."""
    raise click.ClickException("not implemented yet")
