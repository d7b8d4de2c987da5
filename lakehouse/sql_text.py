"""Quoting for the few names and values that are spliced into SQL text."""


def quote_identifier(name: str) -> str:
    """A SQL identifier, quoted so that no name can break out of it."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal, quoted so that no value can break out of it."""
    return "'" + value.replace("'", "''") + "'"
