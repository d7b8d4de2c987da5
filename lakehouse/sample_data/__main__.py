"""Allow ``python -m lakehouse.sample_data`` (same as ``lakehouse generate``)."""

from lakehouse.cli.generate import command

command(prog_name="python -m lakehouse.sample_data")
