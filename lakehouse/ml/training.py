"""Train the speed model on one day's training set: CPU, fixed seed, bounded work.

Deterministic: the same files and config give the same weights and losses, bit for bit (seeded
initialisation and shuffle, one intra-op thread while training, so float sums never change
order). Losses are mean squared errors in (km/h)² over every row of a split; the reference is
the loss of always predicting the train split's mean next speed, measured on validation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from lakehouse.ml.dataset import FEATURE_NAMES, N_FEATURES, GpsTrainingDataset
from lakehouse.ml.extra import missing_ml_extra
from lakehouse.ml.model import Normalisation, SpeedRegressor, save_speed_model

try:
    import torch
except ImportError as exc:
    raise missing_ml_extra(exc) from exc

TORCH_VERSION = torch.__version__
STATS_BATCH_SIZE = 8192
PREDICTION_SAMPLE = 5


class EmptySplit(ValueError):
    """A split without rows: nothing to train on or to validate against."""


@dataclass(frozen=True)
class TrainingConfig:
    """How the model is trained; small enough for a CPU in seconds per day of a small fleet."""

    seed: int = 7
    epochs: int = 8
    max_steps: int = 4000
    batch_size: int = 512
    hidden: int = 16
    learning_rate: float = 0.01


@dataclass
class TrainingReport:
    """The trained model and what was measured while training it."""

    model: SpeedRegressor
    normalisation: Normalisation
    config: TrainingConfig
    train_rows: int
    validation_rows: int
    train_losses: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    steps: int = 0
    mean_baseline_loss: float = float("nan")
    validation_sample: list[float] = field(default_factory=list)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    @property
    def validation_loss(self) -> float:
        return self.validation_losses[-1]

    @property
    def beats_mean_baseline(self) -> bool:
        return self.validation_loss < self.mean_baseline_loss


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (fixed summation order), then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_speed_model(
    train_file: str | os.PathLike,
    validation_file: str | os.PathLike,
    config: TrainingConfig | None = None,
) -> TrainingReport:
    """Fit the model on the train file, measuring both splits after every epoch."""
    config = config or TrainingConfig()
    with one_thread():
        normalisation, train_rows = feature_statistics(train_file)
        validation = GpsTrainingDataset([validation_file], batch_size=STATS_BATCH_SIZE)
        validation_rows = validation.num_rows
        if validation_rows == 0:
            raise EmptySplit(f"{validation_file} has no rows: nothing to validate against")
        torch.manual_seed(config.seed)
        model = SpeedRegressor(N_FEATURES, config.hidden, normalisation)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        train = GpsTrainingDataset(
            [train_file], batch_size=config.batch_size, shuffle=True, seed=config.seed
        )
        report = TrainingReport(model, normalisation, config, train_rows, validation_rows)
        target_variance = normalisation.target_std**2
        for epoch in range(config.epochs):
            if report.steps >= config.max_steps:
                break
            train.set_epoch(epoch)
            model.train()
            squared, rows = 0.0, 0
            for features, target in train:
                if report.steps >= config.max_steps:
                    break
                loss = torch.mean((model(features) - target) ** 2)
                optimiser.zero_grad()
                # Optimise the standardised error; report the error in (km/h)².
                (loss / target_variance).backward()
                optimiser.step()
                squared += float(loss.detach()) * len(target)
                rows += len(target)
                report.steps += 1
            report.train_losses.append(squared / rows)
            report.validation_losses.append(evaluate(model, validation))
        report.mean_baseline_loss = constant_loss(validation, normalisation.target_mean)
        report.validation_sample = predict_head(model, validation_file, PREDICTION_SAMPLE)
    return report


def save_report_model(
    report: TrainingReport, path: str | os.PathLike, **extra: int | float | str
) -> None:
    """Write the trained model file (state dict, normalisation, feature order, ``extra``)."""
    save_speed_model(
        report.model, report.normalisation, FEATURE_NAMES, path, seed=report.config.seed, **extra
    )


def feature_statistics(train_file: str | os.PathLike) -> tuple[Normalisation, int]:
    """Mean and standard deviation of each feature and of the target, in one streamed pass."""
    count, sums, squares = 0, np.zeros(N_FEATURES + 1), np.zeros(N_FEATURES + 1)
    for features, target in GpsTrainingDataset([train_file], batch_size=STATS_BATCH_SIZE):
        block = np.concatenate([features.numpy(), target.numpy()[:, None]], axis=1)
        block = block.astype(np.float64)
        count += len(block)
        sums += block.sum(axis=0)
        squares += (block**2).sum(axis=0)
    if count == 0:
        raise EmptySplit(f"{train_file} has no rows: nothing to train on")
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[std < 1e-6] = 1.0  # a constant column is centred, not scaled
    return (
        Normalisation(
            feature_mean=torch.tensor(mean[:N_FEATURES], dtype=torch.float32),
            feature_std=torch.tensor(std[:N_FEATURES], dtype=torch.float32),
            target_mean=float(mean[N_FEATURES]),
            target_std=float(std[N_FEATURES]),
        ),
        count,
    )


def evaluate(model: SpeedRegressor, data: GpsTrainingDataset) -> float:
    """Mean squared error of the model over every row of ``data``."""
    model.eval()
    squared, rows = 0.0, 0
    with torch.no_grad():
        for features, target in data:
            squared += float(((model(features) - target).double() ** 2).sum())
            rows += len(target)
    return squared / rows


def constant_loss(data: GpsTrainingDataset, value: float) -> float:
    """Mean squared error of always predicting ``value``."""
    squared, rows = 0.0, 0
    for _, target in data:
        squared += float(((target.double() - value) ** 2).sum())
        rows += len(target)
    return squared / rows


def predict_head(model: SpeedRegressor, path: str | os.PathLike, rows: int) -> list[float]:
    """The model's predictions for the first ``rows`` rows of a file, in file order."""
    model.eval()
    data = GpsTrainingDataset([path], batch_size=rows)
    with torch.no_grad():
        features, _ = next(iter(data))
        return [float(v) for v in model(features)]
