"""The one message for a missing ``ml`` extra, so every entry point says the same thing."""

from __future__ import annotations

ML_EXTRA_INSTALL = 'pip install -e ".[ml]"'


class MissingMlExtra(ImportError):
    """PyTorch or matplotlib is not importable: the optional ``ml`` extra is not installed."""


def missing_ml_extra(cause: ImportError) -> MissingMlExtra:
    """The error to raise (``from cause``) when importing the extra's packages failed."""
    return MissingMlExtra(
        f"the `ml` extra (PyTorch, matplotlib) is not installed: {cause}. "
        f"Install it with: {ML_EXTRA_INSTALL}"
    )
