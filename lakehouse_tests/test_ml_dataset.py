"""The PyTorch Dataset over the training set: shapes, feature order, NULLs, sharding, shuffling.

Needs the ``ml`` extra: without PyTorch every test here fails and says how to install it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.governance.masking import SALT_ENV
from lakehouse.tables import ML_TRAINING_SCHEMA
from lakehouse_tests.ml_support import HandDay, build_hand_day, pick_salt, require_torch

SPLITS = ("train", "validation")
FEATURE_ORDER = (
    "seconds_since_midnight",
    "hour_of_day",
    "speed",
    "delta_seconds",
    "delta_km",
    "delta_speed",
    "loc_valid",
    "has_previous",
    "delta_km_known",
)


@pytest.fixture(scope="module")
def torch() -> ModuleType:
    return require_torch()


@pytest.fixture(scope="module")
def dataset_module(torch: ModuleType) -> ModuleType:
    from lakehouse.ml import dataset

    return dataset


@pytest.fixture(scope="module")
def hand_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandDay]:
    salt = pick_salt()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SALT_ENV, salt)
        yield build_hand_day(tmp_path_factory.mktemp("hand-day"), salt)


def _expected_vector(row: dict) -> list[float]:
    """The documented feature vector of a stored row, written out by hand."""

    def zero_if_none(value: float | None) -> float:
        return 0.0 if value is None else float(value)

    return [
        float(row["seconds_since_midnight"]),
        float(row["hour_of_day"]),
        row["speed"],
        zero_if_none(row["delta_seconds"]),
        zero_if_none(row["delta_km"]),
        zero_if_none(row["delta_speed"]),
        1.0 if row["loc_valid"] else 0.0,
        0.0 if row["delta_seconds"] is None else 1.0,
        0.0 if row["delta_km"] is None else 1.0,
    ]


def _rows(features, target) -> list[tuple[float, ...]]:
    return [(*f, t) for f, t in zip(features.tolist(), target.tolist(), strict=True)]


def test_yields_float32_batches_of_the_documented_shape_and_order(
    hand_day: HandDay, dataset_module: ModuleType, torch: ModuleType
) -> None:
    assert dataset_module.FEATURE_NAMES == FEATURE_ORDER
    assert dataset_module.N_FEATURES == 9
    path = hand_day.split_path("train")
    data = dataset_module.GpsTrainingDataset([path], batch_size=7)
    batches = list(data)
    assert [len(t) for _, t in batches] == [7, 7, 6]
    for features, target in batches:
        assert features.dtype == torch.float32 and target.dtype == torch.float32
        assert features.shape == (len(target), 9) and target.shape == (len(target),)
        assert torch.isfinite(features).all() and torch.isfinite(target).all()
    stored = hand_day.split_rows("train")
    got = [row for f, t in batches for row in _rows(f, t)]
    want = [(*_expected_vector(r), r["target_next_speed"]) for r in stored]
    assert len(got) == len(want) == data.num_rows
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-6)  # float32 of the stored doubles
    # Every NULL case is present: first points and unknown distances became 0 + indicator.
    assert {r[7] for r in got} == {0.0, 1.0} and {r[8] for r in got} == {0.0, 1.0}


def test_two_dataloader_workers_cover_every_row_exactly_once(
    hand_day: HandDay, dataset_module: ModuleType, torch: ModuleType
) -> None:
    files = [hand_day.split_path(s) for s in SPLITS]
    data = dataset_module.GpsTrainingDataset(files, batch_size=4)
    # Worker 0 reads the train file's row group, worker 1 the validation file's.
    assert data.shard(0, 2) == [(0, 0)] and data.shard(1, 2) == [(1, 0)]
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
    seen = Counter(row for features, target in loader for row in _rows(features, target))
    direct = Counter(row for features, target in data for row in _rows(features, target))
    assert sum(seen.values()) == sum(len(hand_day.split_rows(s)) for s in SPLITS) == 24
    assert seen == direct


def test_shuffle_is_seeded_per_epoch_and_keeps_every_row(
    hand_day: HandDay, dataset_module: ModuleType
) -> None:
    path = hand_day.split_path("train")

    def order(epoch: int, seed: int = 3) -> list[tuple[float, ...]]:
        data = dataset_module.GpsTrainingDataset([path], batch_size=5, shuffle=True, seed=seed)
        data.set_epoch(epoch)
        return [row for f, t in data for row in _rows(f, t)]

    plain = [
        row
        for f, t in dataset_module.GpsTrainingDataset([path], batch_size=5)
        for row in _rows(f, t)
    ]
    assert order(0) == order(0)
    assert order(0) != order(1) and order(0) != plain
    assert sorted(order(1)) == sorted(plain)


def test_a_non_finite_value_in_a_foreign_file_is_refused(
    tmp_path: Path, dataset_module: ModuleType
) -> None:
    row = {
        "vehicle_id": "a" * 64,
        "seconds_since_midnight": 10,
        "hour_of_day": 0,
        "speed": math.nan,
        "delta_seconds": None,
        "delta_km": None,
        "delta_speed": None,
        "loc_valid": True,
        "target_next_speed": 1.0,
    }
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=ML_TRAINING_SCHEMA), path)
    with pytest.raises(ValueError, match="'speed' holds NaN"):
        list(dataset_module.GpsTrainingDataset([path]))
