"""Deterministic raw GPS reports for demos, tests and benchmarks.

The generator mimics what the upstream fleet uploaders drop into the raw zone: per arrival hour,
several Parquet/ORC files (one per uploader, i.e. per vehicle group) with string-typed fields as
they come off the device. Everything is vectorized per file so that an hour for 30,000 vehicles
(~11M rows) stays within seconds and one file's arrays in memory. ``dirty=True`` adds the kinds of
defects the ODS layer has to survive: bad rows inside files and junk objects next to them.

Randomness comes from ``numpy.random.default_rng(seed)`` split into independent streams (walk,
row dirt, junk), so the same arguments always give the same files and a dirty run is the clean
run plus dirt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.orc as orc
import pyarrow.parquet as pq

from lakehouse.defs.ods.intake import hour_dir
from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import Zone
from lakehouse.rules import REPORT_TIME_FORMAT
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE

# The uploaders' contract is the ODS one: same folder, same columns, same time format.
RAW_DATASET = ODS_TABLE
RAW_SCHEMA = ODS_SCHEMA
FILE_FORMATS = ("parquet", "orc", "mixed")

# Row dirt kinds and their rates; the first four are mutually exclusive per row.
DIRT_RATES = {
    "null_vin": 0.005,
    "negative_speed": 0.005,
    "bad_coordinates": 0.005,
    "bad_report_time": 0.005,
}
DUPLICATE_RATE = 0.01
DIRT_KINDS = (*DIRT_RATES, "duplicate_rows")
JUNK_KINDS = (
    "ds_store",
    "success_marker",
    "empty_parquet",
    "corrupt_parquet",
    "wrong_schema",
    "temp_upload",
)

CENTER_LNG, CENTER_LAT = 120.0, 30.0
START_SPREAD_DEG = 0.5
MAX_SPEED_KMH = 120.0
KM_PER_DEG_LAT = 111.32
SECONDS_PER_HOUR = 3600
# Per-step noise for a 10 s interval; scaled with sqrt(interval) so the walk is interval-agnostic.
SPEED_STEP_SIGMA_KMH = 2.0
HEADING_STEP_SIGMA_RAD = 0.15
REFERENCE_INTERVAL_S = 10


@dataclass(frozen=True)
class GenerationReport:
    """What ``write_sample_data`` wrote, so callers can assert on it or print a summary."""

    files: tuple[str, ...]
    rows_per_hour: dict[datetime, int]
    dirt: dict[str, int]
    junk_files: tuple[str, ...]
    junk_counts: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.rows_per_hour.values())


@dataclass(frozen=True)
class RawFile:
    """One uploader's file for one arrival hour, before it is serialized."""

    hour: datetime
    index: int
    table: pa.Table
    dirt: dict[str, int] = field(default_factory=dict)


@dataclass
class _FleetState:
    """Per-vehicle state carried across hours so positions and sequence numbers continue."""

    lng: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    seq: np.ndarray
    phase: np.ndarray
    started: bool = False


def raw_hour_dir(hour: datetime) -> str:
    """Zone-relative folder of one arrival hour: the raw layout contract."""
    return hour_dir(HourPartition(hour))


def validate_start(start: datetime) -> None:
    """Reject starts that would silently shift partitions (time zones, minutes)."""
    if not isinstance(start, datetime):
        raise TypeError(f"start must be a datetime, got {type(start).__name__}")
    if start.tzinfo is not None:
        raise ValueError("start must be a naive UTC datetime (no tzinfo)")
    if (start.minute, start.second, start.microsecond) != (0, 0, 0):
        raise ValueError(f"start must be truncated to the hour, got {start.isoformat()}")


def _validate(
    start: datetime, hours: int, vehicles: int, interval_s: int, files_per_hour: int, fmt: str
) -> None:
    validate_start(start)
    if hours < 1:
        raise ValueError("hours must be >= 1")
    if vehicles < 1:
        raise ValueError("vehicles must be >= 1")
    if not 1 <= interval_s <= SECONDS_PER_HOUR:
        raise ValueError("interval_s must be between 1 and 3600")
    if not 1 <= files_per_hour <= vehicles:
        raise ValueError("files_per_hour must be between 1 and the number of vehicles")
    if fmt not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {fmt!r}")


def reports_per_hour(interval_s: int) -> int:
    """Reports one vehicle sends per hour; every one of them falls inside the hour."""
    return SECONDS_PER_HOUR // interval_s


def _init_fleet(rng: np.random.Generator, vehicles: int, interval_s: int) -> _FleetState:
    return _FleetState(
        lng=CENTER_LNG + rng.uniform(-START_SPREAD_DEG, START_SPREAD_DEG, vehicles),
        lat=CENTER_LAT + rng.uniform(-START_SPREAD_DEG, START_SPREAD_DEG, vehicles),
        speed=rng.uniform(0.0, 80.0, vehicles),
        heading=rng.uniform(0.0, 2 * np.pi, vehicles),
        seq=rng.integers(0, 1_000_000, vehicles, dtype=np.int64),
        phase=rng.integers(0, interval_s, vehicles, dtype=np.int64),
    )


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold an unbounded walk into [lo, hi] by reflection: a bounded walk without a loop."""
    span = hi - lo
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _walk(
    rng: np.random.Generator, state: _FleetState, vids: np.ndarray, steps: int, interval_s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions and speeds of ``vids`` for one hour, shape (steps, len(vids)); updates state."""
    n = len(vids)
    scale = np.sqrt(interval_s / REFERENCE_INTERVAL_S)
    speed = np.cumsum(rng.normal(0.0, SPEED_STEP_SIGMA_KMH * scale, (steps, n)), axis=0)
    speed = _reflect(speed + state.speed[vids], 0.0, MAX_SPEED_KMH)
    heading = np.cumsum(rng.normal(0.0, HEADING_STEP_SIGMA_RAD * scale, (steps, n)), axis=0)
    heading += state.heading[vids]
    dt = np.full((steps, 1), float(interval_s))
    # The first report of an hour is one gap after the previous hour's last report.
    dt[0] = SECONDS_PER_HOUR - (steps - 1) * interval_s if state.started else 0.0
    dist_km = speed * dt / SECONDS_PER_HOUR
    lat0 = state.lat[vids]
    lat = lat0 + np.cumsum(dist_km * np.cos(heading), axis=0) / KM_PER_DEG_LAT
    km_per_deg_lng = KM_PER_DEG_LAT * np.cos(np.radians(lat0))
    lng = state.lng[vids] + np.cumsum(dist_km * np.sin(heading), axis=0) / km_per_deg_lng
    state.lng[vids], state.lat[vids] = lng[-1], lat[-1]
    state.speed[vids], state.heading[vids] = speed[-1], np.mod(heading[-1], 2 * np.pi)
    return lng, lat, speed


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``VIN000001``-style identifiers, built in Arrow rather than a Python loop."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _time_table(hour: datetime) -> pa.Array:
    """All report_time strings of an hour, then slash-formatted ones, then 'N/A' and ''.

    Rows pick their string by index (``take``), which is ~15x faster than ``strftime`` per row.
    """
    base = np.datetime64(hour, "s") + np.arange(SECONDS_PER_HOUR)
    stamps = pa.array(base.astype("datetime64[s]"), pa.timestamp("s"))
    good = pc.strftime(stamps, format=REPORT_TIME_FORMAT)
    slashed = pc.strftime(stamps, format="%Y/%m/%d %H:%M:%S")
    return pa.concat_arrays([good, slashed, pa.array(["N/A", ""], pa.string())])


def _payloads(seq: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise('{"seq":', pc.cast(pa.array(seq), pa.string()), "}", "")


@dataclass
class _Rows:
    """Flat per-row columns of one file in output order (report_time, then vin)."""

    local: np.ndarray  # index into the file's vehicle list
    second: np.ndarray  # second of the hour; doubles as index into the time table
    lng: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    seq: np.ndarray
    vin_null: np.ndarray | None = None


def _file_rows(
    rng: np.random.Generator, state: _FleetState, group: np.ndarray, interval_s: int
) -> tuple[np.ndarray, _Rows]:
    """Walk one vehicle group for an hour and flatten it in report_time, vin order.

    Ordering vehicles by (phase, vin) and laying rows out step-major sorts by time for free:
    report second = step * interval + phase with phase < interval.
    """
    vids = group[np.lexsort((group, state.phase[group]))]
    steps = reports_per_hour(interval_s)
    lng, lat, speed = _walk(rng, state, vids, steps, interval_s)
    step_idx = np.arange(steps, dtype=np.int64)[:, None]
    second = step_idx * interval_s + state.phase[vids]
    seq = state.seq[vids] + step_idx
    state.seq[vids] += steps
    local = np.broadcast_to(np.arange(len(vids)), (steps, len(vids)))
    rows = _Rows(
        local=local.ravel(),
        second=second.ravel(),
        lng=np.round(lng.ravel(), 6),
        lat=np.round(lat.ravel(), 6),
        speed=np.round(speed.ravel(), 1),
        seq=seq.ravel(),
    )
    return vids, rows


def _inject_row_dirt(rng: np.random.Generator, rows: _Rows) -> dict[str, int]:
    """Spoil a few percent of rows in place; returns counts (duplicates are added later)."""
    n = len(rows.second)
    u = rng.random(n)
    edges = np.cumsum(list(DIRT_RATES.values()))
    kind = np.searchsorted(edges, u, side="right")  # 0..3 dirty kinds, 4 = clean
    rows.vin_null = kind == 0
    neg = kind == 1
    rows.speed[neg] = -np.round(rng.uniform(0.1, 30.0, np.count_nonzero(neg)), 1)
    _spoil_coordinates(rng, rows, kind == 2)
    _spoil_times(rng, rows, kind == 3)
    return {name: int(np.count_nonzero(kind == i)) for i, name in enumerate(DIRT_RATES)}


def _spoil_coordinates(rng: np.random.Generator, rows: _Rows, mask: np.ndarray) -> None:
    """GPS glitches: 0/0 fixes, latitude beyond the pole, longitude beyond the date line."""
    idx = np.flatnonzero(mask)
    variant = rng.integers(0, 3, len(idx))
    zero = idx[variant == 0]
    rows.lng[zero], rows.lat[zero] = 0.0, 0.0
    rows.lat[idx[variant == 1]] = 95.0
    rows.lng[idx[variant == 2]] = 181.0


def _spoil_times(rng: np.random.Generator, rows: _Rows, mask: np.ndarray) -> None:
    """Point rows at the slash-formatted, 'N/A' or empty entries of the time table."""
    idx = np.flatnonzero(mask)
    variant = rng.integers(0, 3, len(idx))
    slash = idx[variant == 0]
    rows.second[slash] += SECONDS_PER_HOUR
    rows.second[idx[variant == 1]] = 2 * SECONDS_PER_HOUR
    rows.second[idx[variant == 2]] = 2 * SECONDS_PER_HOUR + 1


def _to_table(rows: _Rows, vins: pa.Array, devices: pa.Array, times: pa.Array) -> pa.Table:
    vin_idx = pa.array(rows.local, mask=rows.vin_null)
    columns = [
        pc.take(vins, vin_idx),
        pc.take(devices, pa.array(rows.local)),
        pc.take(times, pa.array(rows.second)),
        pa.array(rows.lng),
        pa.array(rows.lat),
        pa.array(rows.speed),
        _payloads(rows.seq),
    ]
    return pa.Table.from_arrays(columns, schema=RAW_SCHEMA)


def _duplicate_rows(rng: np.random.Generator, table: pa.Table) -> tuple[pa.Table, int]:
    """Repeat ~1% of rows right after themselves: a retried upload inside the same file."""
    dup = rng.random(table.num_rows) < DUPLICATE_RATE
    order = np.repeat(np.arange(table.num_rows), 1 + dup.astype(np.int64))
    return table.take(pa.array(order)), int(np.count_nonzero(dup))


def generate_reports(
    *,
    start: datetime,
    hours: int = 1,
    vehicles: int = 50,
    interval_s: int = 10,
    files_per_hour: int = 4,
    dirty: bool = False,
    seed: int = 42,
) -> Iterator[RawFile]:
    """Yield each uploader file's table, hour by hour, one file in memory at a time."""
    _validate(start, hours, vehicles, interval_s, files_per_hour, "mixed")
    walk_rng, dirt_rng, _ = np.random.default_rng(seed).spawn(3)
    state = _init_fleet(walk_rng, vehicles, interval_s)
    width = max(6, len(str(vehicles)))
    groups = np.array_split(np.arange(vehicles, dtype=np.int64), files_per_hour)
    for h in range(hours):
        hour = start + timedelta(hours=h)
        times = _time_table(hour)
        for index, group in enumerate(groups):
            vids, rows = _file_rows(walk_rng, state, group, interval_s)
            dirt = _inject_row_dirt(dirt_rng, rows) if dirty else {}
            vins, devices = _ids("VIN", vids + 1, width), _ids("DEV", vids + 1, width)
            table = _to_table(rows, vins, devices, times)
            if dirty:
                table, dirt["duplicate_rows"] = _duplicate_rows(dirt_rng, table)
            yield RawFile(hour, index, table, dirt)
            del table, rows  # keep at most one file's data alive while building the next
        state.started = True


def _file_suffix(file_format: str, index: int) -> str:
    if file_format == "mixed":
        return "parquet" if index % 2 == 0 else "orc"
    return file_format


class WouldOverwrite(FileExistsError):
    """Generating would replace an existing raw file with different bytes."""


def _upload(zone: Zone, rel: str, payload: bytes, overwrite: bool) -> None:
    """Upload one file whole, as an uploader would; never silently replace different data.

    The generator is deterministic, so re-running it with the same arguments finds identical
    files and leaves them alone.
    """
    existing = zone.stat(rel)
    if existing is not None and not overwrite:
        if existing.size == len(payload) and zone.read_bytes(rel) == payload:
            return
        raise WouldOverwrite(
            f"{zone.display(zone.path(rel))} already exists with other data; choose another "
            "--start/--day, or pass --overwrite to replace it"
        )
    zone.write_bytes(rel, payload)


def _write_table(zone: Zone, rel: str, table: pa.Table, overwrite: bool) -> None:
    sink = pa.BufferOutputStream()
    if rel.endswith(".orc"):
        orc.write_table(table, sink, compression="zstd")
    else:
        pq.write_table(table, sink, compression="zstd")
    _upload(zone, rel, sink.getvalue().to_pybytes(), overwrite)


def _epoch_seconds(hour: datetime) -> int:
    """Seconds since the epoch of a naive UTC datetime (``timestamp()`` would assume local)."""
    return int((hour - datetime(1970, 1, 1)).total_seconds())


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _junk_objects(rng: np.random.Generator, hour: datetime) -> list[tuple[str, str, bytes]]:
    """(kind, file name, bytes) of the non-data objects that land in real upload folders."""
    n = 5
    wrong = pa.table(
        {
            "vin": [f"VIN{i:06d}" for i in range(1, n + 1)],
            "ts": [_epoch_seconds(hour) + i for i in range(n)],
            "longitude": rng.uniform(119.5, 120.5, n),
            "latitude": rng.uniform(29.5, 30.5, n),
        }
    )
    partial = _parquet_bytes(wrong)
    garbage = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
    return [
        ("ds_store", ".DS_Store", b"\x00\x00\x00\x01Bud1" + garbage[:64]),
        ("success_marker", "_SUCCESS", b""),
        ("empty_parquet", "empty.parquet", b""),
        ("corrupt_parquet", "corrupt.parquet", b"PAR1" + garbage + b"PAR1"),
        ("wrong_schema", "wrong_schema.parquet", partial),
        ("temp_upload", f".part-{hour:%H}-999.parquet.inprogress", partial[: len(partial) // 2]),
        ("temp_upload", "upload.parquet.tmp", partial[: len(partial) // 3]),
    ]


def _write_junk(
    zone: Zone,
    rng: np.random.Generator,
    hour: datetime,
    counts: dict[str, int],
    overwrite: bool,
) -> list[str]:
    written = []
    for kind, name, payload in _junk_objects(rng, hour):
        rel = f"{raw_hour_dir(hour)}/{name}"
        _upload(zone, rel, payload, overwrite)
        counts[kind] += 1
        written.append(rel)
    return written


def write_sample_data(
    zone: Zone,
    *,
    start: datetime,
    hours: int = 1,
    vehicles: int = 50,
    interval_s: int = 10,
    files_per_hour: int = 4,
    file_format: str = "mixed",
    dirty: bool = False,
    seed: int = 42,
    overwrite: bool = False,
) -> GenerationReport:
    """Write ``hours`` arrival hours of raw GPS files into ``zone`` under ``raw_hour_dir``.

    Existing files with other bytes are refused (:class:`WouldOverwrite`) unless ``overwrite``.
    """
    _validate(start, hours, vehicles, interval_s, files_per_hour, file_format)
    files: list[str] = []
    rows_per_hour: dict[datetime, int] = {}
    dirt = dict.fromkeys(DIRT_KINDS, 0) if dirty else {}
    junk_counts = dict.fromkeys(JUNK_KINDS, 0) if dirty else {}
    junk_files: list[str] = []
    junk_rng = np.random.default_rng(seed).spawn(3)[2]
    reports = generate_reports(
        start=start,
        hours=hours,
        vehicles=vehicles,
        interval_s=interval_s,
        files_per_hour=files_per_hour,
        dirty=dirty,
        seed=seed,
    )
    for raw in reports:
        name = f"part-{raw.hour:%H}-{raw.index:03d}.{_file_suffix(file_format, raw.index)}"
        rel = f"{raw_hour_dir(raw.hour)}/{name}"
        _write_table(zone, rel, raw.table, overwrite)
        files.append(rel)
        rows_per_hour[raw.hour] = rows_per_hour.get(raw.hour, 0) + raw.table.num_rows
        for kind, count in raw.dirt.items():
            dirt[kind] += count
        if dirty and raw.index == files_per_hour - 1:
            junk_files += _write_junk(zone, junk_rng, raw.hour, junk_counts, overwrite)
        del raw  # release this file's table before the generator builds the next one
    return GenerationReport(tuple(files), rows_per_hour, dirt, tuple(junk_files), junk_counts)
