"""A PyTorch ``IterableDataset`` that streams the GPS training set from its Parquet files.

Each item is one batch, so use it with ``DataLoader(dataset, batch_size=None, num_workers=...)``:
``(features, target)``, float32 tensors of shape ``(batch, N_FEATURES)`` and ``(batch,)``, with
``batch <= batch_size`` (a batch never spans two row groups, so the last one of a row group may be
smaller). Feature columns, in this order (:data:`FEATURE_NAMES`):

====  ======================  ==========================================================
 0    seconds_since_midnight  of the point's event_time (0..86399)
 1    hour_of_day             0..23
 2    speed                   km/h
 3    delta_seconds           since the vehicle's previous point; 0 for its first point
 4    delta_km                planar km from the previous point; 0 when unknown (see 8)
 5    delta_speed             km/h since the previous point; 0 for the first point
 6    loc_valid               1.0 or 0.0
 7    has_previous            1.0, or 0.0 for the vehicle's first point of the day
 8    delta_km_known          1.0, or 0.0 when delta_km is NULL in the file: the first point,
                              or either end without a valid location (NaN, missing or
                              out-of-range coordinates)
====  ======================  ==========================================================

The target is ``target_next_speed`` (km/h). Non-finite values: the files hold NULL, never NaN or
infinity, where a delta is unknown (the table's schema refuses the latter); NULL becomes 0.0
and the indicator columns 7 and 8 say so. A NaN or infinity in a file means it was not written
by the lakehouse, and iterating raises ``ValueError`` naming the column rather than feeding it
to a model.

Streaming: files are read one row group at a time (``ParquetFile.iter_batches``), never whole;
memory stays at one row group (65,536 rows as the lakehouse writes them) per worker. Sharding:
the (file, row group) pairs are dealt round-robin to DataLoader workers, so each row is yielded
by exactly one worker once per pass. With ``shuffle=True`` the pairs' order and the rows within
each row group are permuted by a generator seeded with ``(seed, epoch)``: deterministic, and
different each epoch (:meth:`GpsTrainingDataset.set_epoch`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakehouse.defs.ml.features import FEATURE_COLUMNS, TARGET_COLUMN
from lakehouse.ml.extra import missing_ml_extra

try:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError as exc:
    raise missing_ml_extra(exc) from exc

INDICATORS = ("has_previous", "delta_km_known")
FEATURE_NAMES = (*FEATURE_COLUMNS, *INDICATORS)
N_FEATURES = len(FEATURE_NAMES)
DEFAULT_BATCH_SIZE = 1024
# Stored columns whose NULL becomes 0.0, and the indicator that says it was NULL.
NULL_MEANS_UNKNOWN = {
    "delta_seconds": "has_previous",
    "delta_speed": "has_previous",
    "delta_km": "delta_km_known",
}


class GpsTrainingDataset(IterableDataset):
    """Batches of ``(features, target)`` from training-set files; see the module doc."""

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        batch_size: int = DEFAULT_BATCH_SIZE,
        shuffle: bool = False,
        seed: int = 0,
        filesystem: pafs.FileSystem | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.files = [os.fspath(f) for f in files]
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.filesystem = filesystem
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffle order of the next pass (a different one each epoch)."""
        self.epoch = epoch

    @property
    def num_rows(self) -> int:
        """Rows over all files, from their footers."""
        return sum(self._open(f).metadata.num_rows for f in self.files)

    def _open(self, path: str) -> pq.ParquetFile:
        return pq.ParquetFile(path, filesystem=self.filesystem)

    def _units(self) -> list[tuple[int, int]]:
        """(file index, row group) pairs in reading order, before sharding."""
        units = [
            (index, group)
            for index, path in enumerate(self.files)
            for group in range(self._open(path).num_row_groups)
        ]
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(units))
            units = [units[i] for i in order]
        return units

    def shard(self, worker: int, workers: int) -> list[tuple[int, int]]:
        """The (file index, row group) pairs that worker ``worker`` of ``workers`` reads."""
        return self._units()[worker::workers]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        columns = [*FEATURE_COLUMNS, TARGET_COLUMN]
        opened: dict[int, pq.ParquetFile] = {}
        for index, group in self.shard(worker_id, workers):
            parquet = opened.setdefault(index, self._open(self.files[index]))
            if self.shuffle:
                yield from self._shuffled(parquet, index, group, columns)
            else:
                for batch in parquet.iter_batches(
                    batch_size=self.batch_size, row_groups=[group], columns=columns
                ):
                    yield to_tensors(batch)

    def _shuffled(
        self, parquet: pq.ParquetFile, index: int, group: int, columns: list[str]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        table = parquet.read_row_group(group, columns=columns)
        rng = np.random.default_rng([self.seed, self.epoch, index, group])
        table = table.take(pa.array(rng.permutation(table.num_rows)))
        for batch in table.to_batches(max_chunksize=self.batch_size):
            yield to_tensors(batch)


def to_arrays(batch: pa.RecordBatch | pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(rows, N_FEATURES)`` and target ``(rows,)`` as float32 arrays (module doc)."""
    rows = batch.num_rows
    features = np.empty((rows, N_FEATURES), dtype=np.float32)
    known = {name: np.ones(rows, dtype=bool) for name in INDICATORS}
    for position, name in enumerate(FEATURE_COLUMNS):
        column = batch.column(name)
        if name in NULL_MEANS_UNKNOWN:
            known[NULL_MEANS_UNKNOWN[name]] &= ~_null_mask(column)
            column = pc.fill_null(column, 0.0)
        features[:, position] = _finite(column, name)
    for offset, name in enumerate(INDICATORS):
        features[:, len(FEATURE_COLUMNS) + offset] = known[name]
    target = _finite(batch.column(TARGET_COLUMN), TARGET_COLUMN).astype(np.float32)
    return features, target


def to_tensors(batch: pa.RecordBatch | pa.Table) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`to_arrays` as torch tensors (sharing the arrays' memory)."""
    features, target = to_arrays(batch)
    return torch.from_numpy(features), torch.from_numpy(target)


def _null_mask(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where the value is NULL."""
    return np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)


def _finite(column: pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(
            f"column {name!r} holds NaN, infinity or NULL where the training set has none; "
            "this file was not written by the lakehouse"
        )
    return values
