"""The speed model on a generated day, through Dagster, and the lakehouse without PyTorch.

A day of the project's sample data (30 vehicles every 30 s, with dirt; speeds follow a random
walk, so the next speed is learnable from the current one) goes through the real hourly job for
its 24 hours, then the daily ML job (training set, speed model), all in process.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from lakehouse.governance.masking import SALT_ENV
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ML_TRAINING_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import materialization_metadata, materialize_hour
from lakehouse_tests.ml_support import materialize_ml, require_torch

DAY = "2025-09-18"
SALT = "speed-model-test-salt"
SPLITS = ("train", "validation")
MODEL_KEY = "ml_speed_model/dt=2025-09-18/speed_model.pt"


@dataclass
class SampleDay:
    storage: LakehouseStorage
    catalog: CatalogResource
    hourly: list[dg.ExecuteInProcessResult]
    daily: dg.ExecuteInProcessResult

    def split_path(self, split: str) -> str:
        zone = self.storage.warehouse()
        return zone.path(partition_relpath(ML_TRAINING_TABLE, f"dt={DAY}/split={split}"))

    @property
    def model_path(self) -> str:
        return self.storage.warehouse().path(MODEL_KEY)

    def metadata(self, key: str) -> dict:
        return {k: v.value for k, v in materialization_metadata(self.daily, key).items()}


@pytest.fixture(scope="module")
def torch() -> ModuleType:
    return require_torch()


@pytest.fixture(scope="module")
def sample_day(tmp_path_factory: pytest.TempPathFactory, torch: ModuleType) -> Iterator[SampleDay]:
    root = tmp_path_factory.mktemp("sample-day")
    (root / "raw" / ODS_TABLE).mkdir(parents=True)
    storage = LakehouseStorage(raw_url=str(root / "raw"), warehouse_url=str(root / "warehouse"))
    catalog = CatalogResource(path=str(root / "catalog.duckdb"))
    write_sample_data(
        storage.raw(),
        start=datetime.fromisoformat(DAY),
        hours=24,
        vehicles=30,
        interval_s=30,
        dirty=True,
        seed=11,
    )
    hours = [k for k in hourly_partitions.get_partition_keys() if k.startswith(DAY)]
    assert len(hours) == 24
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SALT_ENV, SALT)
        hourly = [materialize_hour(storage, catalog, HourPartition.from_key(key)) for key in hours]
        daily = materialize_ml(storage, catalog, DAY, selection=_both_ml_assets())
        yield SampleDay(storage, catalog, hourly, daily)


def _both_ml_assets() -> list[dg.AssetsDefinition]:
    from lakehouse.defs.ml.assets import ml_gps_training_set, speed_model

    return [ml_gps_training_set, speed_model]


def _targets(path: str) -> np.ndarray:
    return pq.read_table(path, columns=["target_next_speed"]).column(0).to_numpy()


def test_the_day_goes_through_dagster_hourly_then_daily(sample_day: SampleDay) -> None:
    assert len(sample_day.hourly) == 24 and all(r.success for r in sample_day.hourly)
    assert sample_day.daily.success
    materialized = {
        e.asset_key.to_user_string() for e in sample_day.daily.get_asset_materialization_events()
    }
    assert materialized == {ML_TRAINING_TABLE, "speed_model"}
    checks = {
        (c.asset_key.to_user_string(), c.check_name): c.passed
        for c in sample_day.daily.get_asset_check_evaluations()
    }
    assert checks == {
        (ML_TRAINING_TABLE, "pandera_schema"): True,
        ("speed_model", "beats_mean_baseline"): True,
    }
    training = sample_day.metadata(ML_TRAINING_TABLE)
    assert training["hours_present"] == 24 and training["missing_hours"] == "none"
    # 30 vehicles x 2,880 reports, less DWD's drops and each vehicle's last point.
    assert 80_000 < training["rows_train"] + training["rows_validation"] < 86_400
    assert training["vehicles_train"] + training["vehicles_validation"] == 30
    assert training["vehicles_validation"] >= 1
    assert Path(sample_day.model_path).is_file()


def test_validation_loss_beats_predicting_the_mean_speed(sample_day: SampleDay) -> None:
    model = sample_day.metadata("speed_model")
    train, validation = (_targets(sample_day.split_path(s)) for s in SPLITS)
    # The baseline, recomputed from the files: the train mean's error on validation.
    baseline = float(np.mean((validation - train.mean()) ** 2))
    assert model["mean_baseline_loss"] == pytest.approx(baseline, rel=1e-6)
    assert model["train_mean_speed"] == pytest.approx(float(train.mean()), rel=1e-9)
    assert model["validation_loss"] < model["mean_baseline_loss"] / 10
    assert model["validation_loss"] == model["validation_loss_per_epoch"][-1]
    epochs = model["epochs"]
    assert len(model["train_loss_per_epoch"]) == len(model["validation_loss_per_epoch"]) == epochs
    assert model["train_loss_per_epoch"][-1] < model["train_loss_per_epoch"][0]
    assert model["loss_plot"].startswith("![loss](data:image/png;base64,iVBORw0KGgo")
    assert model["train_rows"] == len(train) and model["validation_rows"] == len(validation)


def test_model_file_loads_back_and_predicts_as_in_training(
    sample_day: SampleDay, torch: ModuleType
) -> None:
    from lakehouse.ml.dataset import GpsTrainingDataset
    from lakehouse.ml.model import load_speed_model
    from lakehouse.ml.training import evaluate

    model, saved = load_speed_model(sample_day.model_path)
    metadata = sample_day.metadata("speed_model")
    assert saved["feature_names"] == metadata["features"]
    assert saved["seed"] == metadata["seed"] and saved["day"] == DAY
    validation = GpsTrainingDataset([sample_day.split_path("validation")], batch_size=5)
    features, _ = next(iter(validation))
    with torch.no_grad():
        predictions = model(features).tolist()
    assert predictions == pytest.approx(metadata["validation_sample_predictions"], rel=1e-6)
    assert evaluate(model, validation) == pytest.approx(metadata["validation_loss"], rel=1e-5)


def test_training_is_deterministic_with_its_seed(sample_day: SampleDay, torch: ModuleType) -> None:
    from lakehouse.ml.model import load_speed_model
    from lakehouse.ml.training import train_speed_model

    again = train_speed_model(sample_day.split_path("train"), sample_day.split_path("validation"))
    metadata = sample_day.metadata("speed_model")
    assert again.train_losses == metadata["train_loss_per_epoch"]
    assert again.validation_losses == metadata["validation_loss_per_epoch"]
    published, _ = load_speed_model(sample_day.model_path)
    for name, tensor in published.state_dict().items():
        assert torch.equal(tensor, again.model.state_dict()[name]), name


def test_two_workers_share_a_multi_row_group_file(sample_day: SampleDay, torch: ModuleType) -> None:
    from lakehouse.ml.dataset import GpsTrainingDataset

    path = sample_day.split_path("train")
    assert pq.ParquetFile(path).metadata.num_row_groups >= 2
    data = GpsTrainingDataset([path], batch_size=4096)
    shards = [data.shard(0, 2), data.shard(1, 2)]
    assert shards[0] and shards[1] and not set(shards[0]) & set(shards[1])
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
    rows = Counter()
    for features, target in loader:
        rows.update(map(tuple, torch.cat([features, target[:, None]], dim=1).tolist()))
    assert sum(rows.values()) == pq.ParquetFile(path).metadata.num_rows
    direct = Counter()
    for features, target in data:
        direct.update(map(tuple, torch.cat([features, target[:, None]], dim=1).tolist()))
    assert rows == direct


BLOCK_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError, as if not installed
import dagster as dg
from lakehouse.definitions import defs  # the code location loads without torch
from lakehouse.defs.ml.assets import speed_model
from lakehouse.resources.storage import LakehouseStorage
assert dg.AssetKey("speed_model") in defs.resolve_asset_graph().get_all_asset_keys()
try:
    import lakehouse.ml.dataset
except ImportError as exc:
    print("DATASET:", exc)
result = dg.materialize(
    [speed_model],
    partition_key=sys.argv[2],
    resources={"storage": LakehouseStorage(raw_url=sys.argv[1] + "/raw",
                                           warehouse_url=sys.argv[1] + "/warehouse")},
    raise_on_error=False,
)
(failure,) = [e for e in result.all_events if e.is_step_failure]
print("SUCCESS:", result.success)
print("FAILURE:", failure.step_failure_data.error.message)
"""


def test_speed_model_says_the_ml_extra_is_missing_without_torch(
    sample_day: SampleDay, tmp_path: Path
) -> None:
    """Run in a child whose ``import torch`` fails (``sys.modules["torch"] = None``)."""
    before = Path(sample_day.model_path).read_bytes()
    root = str(Path(sample_day.storage.warehouse_url).parent)
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, root, DAY],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "SUCCESS: False" in out
    assert "the `ml` extra (PyTorch, matplotlib) is not installed" in out
    assert 'pip install -e ".[ml]"' in out.split("FAILURE:")[1]
    assert "speed_model cannot train" in out
    assert "DATASET: the `ml` extra" in out
    assert Path(sample_day.model_path).read_bytes() == before  # the published model stays
