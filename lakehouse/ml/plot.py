"""The loss curves as a PNG embedded in Markdown, for the Dagster UI's metadata panel."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from lakehouse.ml.extra import missing_ml_extra

try:
    from matplotlib.figure import Figure
except ImportError as exc:
    raise missing_ml_extra(exc) from exc


def loss_plot_markdown(
    train_losses: Sequence[float], validation_losses: Sequence[float], baseline: float
) -> str:
    """``![loss](data:image/png;base64,...)`` of the per-epoch losses against the baseline.

    Drawn on a bare ``Figure`` (no pyplot), so no GUI backend or global state is involved.
    """
    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    axes = figure.subplots()
    epochs = range(1, len(train_losses) + 1)
    axes.plot(epochs, train_losses, marker="o", label="train")
    axes.plot(epochs, validation_losses, marker="o", label="validation")
    axes.axhline(baseline, color="grey", linestyle="--", label="mean speed (validation)")
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("MSE (km/h)²")
    axes.set_title("speed model loss")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return f"![loss](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"
