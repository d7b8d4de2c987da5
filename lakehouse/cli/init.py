"""``lakehouse init``: prepare the embedded default once, before anything else starts."""

from __future__ import annotations

import click


@click.command(name="init")
def command() -> None:
    """Initialise the Dagster instance in $DAGSTER_HOME and the data folders, once.

    Safe to repeat and to run twice at once. Run it before starting runs or the daemon on a
    fresh DAGSTER_HOME: Dagster's first-use creation of the instance storage races when two
    processes start together.
    """
    from lakehouse.deployment.initialize import InitError, initialize_home  # Dagster import

    try:
        initialize_home(say=click.echo)
    except InitError as exc:
        raise click.ClickException(str(exc)) from None
