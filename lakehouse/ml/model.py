"""The speed model: a 2-layer MLP from a point's features to its vehicle's next-point speed.

Normalisation is part of the model (buffers in its state dict), so a saved model predicts from
raw features in km/h, the same way wherever it is loaded. The saved file is
``torch.save({"state_dict", "normalisation", "feature_names", "hidden", ...})``; read it back
with :func:`load_speed_model` (``weights_only`` loading: plain tensors and values only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lakehouse.ml.extra import missing_ml_extra

try:
    import torch
    from torch import nn
except ImportError as exc:
    raise missing_ml_extra(exc) from exc

FILE_FORMAT = 1


@dataclass(frozen=True)
class Normalisation:
    """Per-feature mean and standard deviation, and the target's, from the train split."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    target_mean: float
    target_std: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_mean": self.feature_mean,
            "feature_std": self.feature_std,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }


class SpeedRegressor(nn.Module):
    """``features (batch, n) -> next speed (batch,)`` in km/h: standardise, MLP, de-standardise."""

    def __init__(self, n_features: int, hidden: int, normalisation: Normalisation):
        super().__init__()
        self.register_buffer("feature_mean", normalisation.feature_mean.clone().float())
        self.register_buffer("feature_std", normalisation.feature_std.clone().float())
        self.register_buffer("target_mean", torch.tensor(float(normalisation.target_mean)))
        self.register_buffer("target_std", torch.tensor(float(normalisation.target_std)))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.feature_mean) / self.feature_std
        return self.net(scaled).squeeze(-1) * self.target_std + self.target_mean


def save_speed_model(
    model: SpeedRegressor,
    normalisation: Normalisation,
    feature_names: tuple[str, ...],
    path: str | os.PathLike,
    **extra: int | float | str,
) -> None:
    """Write the model's state dict with its normalisation and feature order."""
    torch.save(
        {
            "format": FILE_FORMAT,
            "state_dict": model.state_dict(),
            "normalisation": normalisation.as_dict(),
            "feature_names": list(feature_names),
            "n_features": len(feature_names),
            "hidden": model.net[0].out_features,
            **extra,
        },
        path,
    )


def load_speed_model(path: str | os.PathLike) -> tuple[SpeedRegressor, dict[str, Any]]:
    """The saved model, in eval mode, and everything else the file holds."""
    saved = torch.load(path, weights_only=True)
    if saved.get("format") != FILE_FORMAT:
        raise ValueError(f"{path}: not a speed model file of format {FILE_FORMAT}")
    norm = saved["normalisation"]
    model = SpeedRegressor(
        saved["n_features"],
        saved["hidden"],
        Normalisation(
            norm["feature_mean"], norm["feature_std"], norm["target_mean"], norm["target_std"]
        ),
    )
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved
