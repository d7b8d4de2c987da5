"""The ``lakehouse`` command: one entry point with a subcommand per job a user has.

Subcommands are imported only when they run, so ``lakehouse --help`` answers at once instead of
paying for Dagster's import.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of the click command, in the order ``--help`` lists them.
SUBCOMMANDS = {
    "init": "lakehouse.cli.init:command",
    "generate": "lakehouse.cli.generate:command",
    "demo": "lakehouse.cli.demo:command",
    "sql": "lakehouse.cli.sql:command",
    "policy": "lakehouse.cli.policy:command",
    "serve": "lakehouse.cli.serve:command",
    "api-key": "lakehouse.cli.api_key:command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are loaded on first use (click's documented lazy pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Vehicle lakehouse: raw GPS files -> ODS -> DWD -> ADS on Dagster and DuckDB, and an API."""
