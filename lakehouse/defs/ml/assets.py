"""The ML layer's assets: a day's GPS training set, and the speed model trained on it.

``ml_gps_training_set`` reads the day's hourly DWD partitions (the hours come from the
``TimeWindowPartitionMapping`` on its dependency) and writes one Parquet file per split,
``<warehouse>/ml_gps_training_set/dt=YYYY-MM-DD/split=train|validation/part-0.parquet``. Both
files are staged and validated before either is published, so a schema violation publishes
neither; only a store fault between the two publishes can leave a new validation file beside
the old train file. Both footers carry the same build label (a digest of the DWD files read and
of the SQL), by which ``speed_model`` refuses such a pair, and the step's retry republishes
both.

``speed_model`` trains on the pair and writes ``<warehouse>/ml_speed_model/dt=YYYY-MM-DD/
speed_model.pt``: a folder of its own, so the training set stays a pure hive-partitioned
Parquet table that Spark, DuckDB and pandas read whole (a model file inside it would break
Spark's partition discovery), and each asset owns its prefix. PyTorch is imported only when it
runs: without the ``ml`` extra it fails with the install command, and everything else loads.
"""

import contextlib
import hashlib
import time
from types import ModuleType

import dagster as dg
import duckdb
import pyarrow.parquet as pq
from dagster_duckdb import DuckDBResource

from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.ml.features import (
    FEATURE_COLUMNS,
    SPLITS,
    TARGET_COLUMN,
    TRAIN,
    VALIDATION,
    VALIDATION_BELOW,
    training_set_sql,
)
from lakehouse.defs.publishing import (
    StagedPartition,
    publish,
    schema_check_result,
    stage_copy,
)
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.governance.masking import SALT_ENV, MaskingConfigError, bind_salt
from lakehouse.governance.share_layout import kv_metadata_option
from lakehouse.ml.extra import MissingMlExtra
from lakehouse.partitions import DayPartition, HourPartition, daily_partitions
from lakehouse.quality.enforcement import combined
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sql_text import quote_literal
from lakehouse.tables import DWD_TABLE, ML_TRAINING_TABLE
from lakehouse.warehouse.partition_store import MissingPartition, StagedFile, sweep_staging
from lakehouse.warehouse.sources import ScannedPartitions, fetched_partition, scanned_partitions

ML_TRAINING_KEY = dg.AssetKey(ML_TRAINING_TABLE)
SPEED_MODEL_KEY = dg.AssetKey("speed_model")
MODEL_TABLE = "ml_speed_model"
MODEL_FILE = "speed_model.pt"
LAYOUT = ("dt", "split")
BUILD_LABEL = "lakehouse.ml.build"
BEATS_MEAN_CHECK = "beats_mean_baseline"
# Row groups small enough to shard a day over DataLoader workers and to shuffle in memory.
ROW_GROUP_ROWS = 65_536


def split_partition(day: DayPartition, split: str) -> str:
    """The split's folder inside the table: ``dt=YYYY-MM-DD/split=<split>``."""
    return f"{day.hive_path}/split={split}"


@dg.asset(
    key=ML_TRAINING_KEY,
    partitions_def=daily_partitions,
    deps=[dg.AssetDep(DWD_TABLE, partition_mapping=dg.TimeWindowPartitionMapping())],
    group_name="ml",
    kinds={"duckdb", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=ML_TRAINING_KEY,
            blocking=True,
            description="Every row of both splits fits the training-set pandera schema; "
            "checked before either file becomes visible, so a violation publishes neither.",
        )
    ],
    description="Per-point speed features of the day's vehicles (hashed ids, never VINs) and "
    "each point's next speed, split 90/10 by vehicle into train and validation.",
)
def ml_gps_training_set(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> dg.MaterializeResult:
    """Turn the day's DWD hours into the speed model's training set, one file per split."""
    day = DayPartition.from_key(context.partition_key)
    hours = [HourPartition.from_key(k) for k in context.asset_partition_keys_for_input(DWD_TABLE)]
    staged: dict[str, StagedPartition] = {}
    with storage_faults_handled(context), engine.get_connection() as con:
        warehouse = storage.warehouse()
        _bind_salt_or_refuse(con, day)
        sweep_staging(warehouse, ML_TRAINING_TABLE)
        with scanned_partitions(warehouse, DWD_TABLE, hours) as scan:
            if scan.source is None:
                raise dg.Failure(
                    description=f"{ML_TRAINING_TABLE} {day.key} not built: none of its "
                    f"{len(hours)} DWD hours is materialized",
                    metadata={"hours_missing": len(scan.missing)},
                )
            build = _build_label(scan)
            options = (
                f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, "
                f"{kv_metadata_option({BUILD_LABEL: build})}"
            )
            try:
                for split in SPLITS:
                    staged[split] = stage_copy(
                        warehouse,
                        con,
                        ML_TRAINING_TABLE,
                        split_partition(day, split),
                        training_set_sql(scan.source, split),
                        options,
                    )
                vehicles = {split: _vehicles(con, staged[split]) for split in SPLITS}
                # Both splits are staged and valid: only now does either become visible.
                published = {
                    split: publish(staged[split], catalog, layout=LAYOUT)
                    for split in (VALIDATION, TRAIN)
                }
            finally:
                for file in staged.values():
                    file.discard()
    rows = {split: published[split].written.rows for split in SPLITS}
    context.log.info(
        f"{ML_TRAINING_TABLE} {day.key}: {len(scan.present)} of {len(hours)} hours, "
        f"rows {rows}, vehicles {vehicles}"
    )
    folder = warehouse.display(warehouse.path(ML_TRAINING_TABLE, day.hive_path))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(rows.values()),
            "rows_train": rows[TRAIN],
            "rows_validation": rows[VALIDATION],
            "vehicles_train": vehicles[TRAIN],
            "vehicles_validation": vehicles[VALIDATION],
            "hours_present": len(scan.present),
            "hours_missing": len(scan.missing),
            "present_hours": ", ".join(h.hh for h in scan.present),
            "missing_hours": ", ".join(h.hh for h in scan.missing) or "none",
            "feature_columns": dg.MetadataValue.json(list(FEATURE_COLUMNS)),
            "target_column": TARGET_COLUMN,
            "split_rule": f"validation when int(vehicle_id[:4], 16) < 0x{VALIDATION_BELOW:04x} "
            "(10% of vehicles), else train",
            "path": dg.MetadataValue.path(folder),
            **{f"{split}_path": published[split].metadata["path"] for split in SPLITS},
            "bytes": sum(published[split].written.bytes for split in SPLITS),
            "build": build,
            "catalog_view": published[TRAIN].metadata["catalog_view"],
            "preview": published[TRAIN].metadata["preview"],
        },
        check_results=[_schema_check_result(staged)],
    )


def _schema_check_result(staged: dict[str, StagedPartition]) -> dg.AssetCheckResult:
    return schema_check_result(
        ML_TRAINING_KEY, combined([staged[split].validator for split in SPLITS])
    )


def _bind_salt_or_refuse(con: duckdb.DuckDBPyConnection, day: DayPartition) -> None:
    try:
        bind_salt(con)
    except MaskingConfigError:
        raise dg.Failure(
            description=f"{ML_TRAINING_TABLE} {day.key} not built: its vehicle_id is the "
            f"salted SHA-256 of the VIN (the policy's hash masking) and {SALT_ENV} is not set. "
            "Refusing to write ids without the secret salt; the raw VIN never goes into the "
            "training set."
        ) from None


def _build_label(scan: ScannedPartitions) -> str:
    """Same DWD files and same SQL, same label: re-runs stay byte-identical."""
    digest = hashlib.sha256()
    for info in scan.versions:
        digest.update(f"{info.key}\t{info.size}\t{info.version}\n".encode())
    for split in SPLITS:
        digest.update(training_set_sql("day", split).encode())
    return digest.hexdigest()[:32]


def _vehicles(con: duckdb.DuckDBPyConnection, staged: StagedPartition) -> int:
    source = f"read_parquet({quote_literal(staged.local_path)})"
    ((count,),) = con.execute(f"SELECT count(DISTINCT vehicle_id) FROM {source}").fetchall()
    return int(count)


@dg.asset(
    key=SPEED_MODEL_KEY,
    partitions_def=daily_partitions,
    deps=[ML_TRAINING_KEY],
    group_name="ml",
    kinds={"pytorch"},
    check_specs=[
        dg.AssetCheckSpec(
            BEATS_MEAN_CHECK,
            asset=SPEED_MODEL_KEY,
            blocking=True,
            description="The validation loss is below that of predicting the train split's "
            "mean speed; a model that does not beat it is not published.",
        )
    ],
    description="A small regressor (2-layer MLP, PyTorch, CPU) of a vehicle's next-point "
    "speed, trained on the day's training set with a fixed seed.",
)
def speed_model(
    context: dg.AssetExecutionContext, storage: LakehouseStorage
) -> dg.MaterializeResult:
    """Train the day's speed model, check it beats the mean, and publish its file."""
    training, plot = _ml_extra()
    day = DayPartition.from_key(context.partition_key)
    with storage_faults_handled(context), contextlib.ExitStack() as files:
        warehouse = storage.warehouse()
        sweep_staging(warehouse, MODEL_TABLE)
        try:
            local = {
                split: files.enter_context(
                    fetched_partition(warehouse, ML_TRAINING_TABLE, split_partition(day, split))
                )
                for split in SPLITS
            }
        except MissingPartition as exc:
            raise dg.Failure(description=f"speed_model {day.key} not trained: {exc}") from None
        build = _one_build(local, day)
        started = time.perf_counter()
        try:
            report = training.train_speed_model(local[TRAIN], local[VALIDATION])
        except training.EmptySplit as exc:
            raise dg.Failure(description=f"speed_model {day.key} not trained: {exc}") from None
        seconds = time.perf_counter() - started
        losses = {
            "validation_loss": report.validation_loss,
            "mean_baseline_loss": report.mean_baseline_loss,
        }
        if not report.beats_mean_baseline:
            raise dg.Failure(
                description=f"speed_model {day.key} not published: its validation loss "
                f"{report.validation_loss:.4f} does not beat predicting the mean speed "
                f"({report.mean_baseline_loss:.4f}); the previous model stays",
                metadata=losses,
            )
        staged = files.enter_context(StagedFile(warehouse, MODEL_TABLE, day.hive_path, MODEL_FILE))
        training.save_report_model(report, staged.local_path, day=day.key, training_set_build=build)
        url = staged.put()
    config = report.config
    return dg.MaterializeResult(
        metadata={
            **losses,
            "train_loss_per_epoch": dg.MetadataValue.json(report.train_losses),
            "validation_loss_per_epoch": dg.MetadataValue.json(report.validation_losses),
            "train_mean_speed": report.normalisation.target_mean,
            "loss_plot": dg.MetadataValue.md(
                plot.loss_plot_markdown(
                    report.train_losses, report.validation_losses, report.mean_baseline_loss
                )
            ),
            "epochs": len(report.train_losses),
            "steps": report.steps,
            "seed": config.seed,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "architecture": f"MLP {len(report.feature_names)}-{config.hidden}-1 (ReLU)",
            "features": dg.MetadataValue.json(list(report.feature_names)),
            "train_rows": report.train_rows,
            "validation_rows": report.validation_rows,
            "validation_sample_predictions": dg.MetadataValue.json(report.validation_sample),
            "training_seconds": round(seconds, 3),
            "training_set_build": build,
            "torch_version": training.TORCH_VERSION,
            "path": dg.MetadataValue.path(url),
        },
        check_results=[
            dg.AssetCheckResult(
                asset_key=SPEED_MODEL_KEY, check_name=BEATS_MEAN_CHECK, passed=True, metadata=losses
            )
        ],
    )


def _ml_extra() -> tuple[ModuleType, ModuleType]:
    """The training and plot modules; a clear failure without the ``ml`` extra."""
    try:
        from lakehouse.ml import plot, training
    except MissingMlExtra as exc:
        raise dg.Failure(description=f"speed_model cannot train: {exc}") from None
    return training, plot


def _one_build(local: dict[str, str], day: DayPartition) -> str:
    """The build both splits were written by; refuse a half-published pair."""
    builds = {
        split: (pq.read_metadata(path).metadata or {}).get(BUILD_LABEL.encode(), b"").decode()
        for split, path in local.items()
    }
    if len(set(builds.values())) != 1 or not builds[TRAIN]:
        raise dg.Failure(
            description=f"speed_model {day.key} not trained: the training set's splits come "
            f"from different builds {builds} (a run that failed between publishing them); "
            f"materialize {ML_TRAINING_TABLE} {day.key} again",
        )
    return builds[TRAIN]
