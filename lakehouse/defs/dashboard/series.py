"""What the fleet dashboard shows, gathered by DuckDB from the published partitions.

The dashboard shows the partitions that exist, not a calendar: the newest 48 fleet-KPI hours
and the newest 14 DWS days found in the warehouse (gaps stay gaps), and a sample of the valid
DWD positions of the newest KPI hour. Finding them costs a folder listing per table and per day
walked back, never a listing of all history; reading them costs one small file per hour or day,
and the positions one DuckDB scan of the hour that keeps at most ``MAX_POSITIONS`` rows, so even
an 11M-row hour never leaves the engine.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from lakehouse.partitions import BadPartitionKey, HourPartition
from lakehouse.resources.listing import list_folders
from lakehouse.resources.zones import ObjectInfo, Zone
from lakehouse.sql_text import quote_literal
from lakehouse.tables import DWD_TABLE, DWS_TABLE, KPI_TABLE
from lakehouse.warehouse.partition_store import PARTITION_FILE, partition_relpath

HOURS_SHOWN = 48
DAYS_SHOWN = 14
MAX_POSITIONS = 20_000
# How many more rows than wanted the hash threshold keeps, so a sample is (almost) never short.
SAMPLE_MARGIN = 1.2

_DAY_FOLDER = re.compile(r"dt=\d{4}-\d{2}-\d{2}")
_HOUR_FILE = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/hh=(\d{2})/" + re.escape(PARTITION_FILE))
_DAY_FILE = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/" + re.escape(PARTITION_FILE))

HOURLY_SCHEMA = pa.schema(
    [
        pa.field("hour", pa.timestamp("us")),
        pa.field("stat_hour", pa.string()),
        pa.field("vehicles", pa.int64()),
        pa.field("total_distance", pa.float64()),
        pa.field("total_distance_haversine", pa.float64()),
        pa.field("avg_speed", pa.float64()),
        pa.field("invalid_point_share", pa.float64()),
    ]
)
DAILY_SCHEMA = pa.schema(
    [
        pa.field("day", pa.date32()),
        pa.field("stat_date", pa.string()),
        pa.field("vehicles", pa.int64()),
        pa.field("total_distance", pa.float64()),
        pa.field("total_distance_haversine", pa.float64()),
        pa.field("avg_speed", pa.float64()),
        pa.field("invalid_point_share", pa.float64()),
    ]
)
POSITIONS_SCHEMA = pa.schema(
    [pa.field("lng", pa.float64()), pa.field("lat", pa.float64()), pa.field("speed", pa.float64())]
)

# One row per KPI hour, as published.
HOURLY_SQL = """
    SELECT strptime(p.label, '%Y-%m-%d %H') AS hour, p.label AS stat_hour, k.vehicles,
           k.total_distance, k.total_distance_haversine, k.avg_speed, k.invalid_point_share
    FROM {partitions} LEFT JOIN {rows} k ON k.filename = p.file
    ORDER BY hour
"""
# One row per DWS day. Active vehicles are those with an ADS row that day (the hourly KPI's
# definition); the day's mean speed weighs each vehicle's mean by its valid points, so it is the
# mean over all of the day's valid reports, as the hourly KPI's is over the hour's.
DAILY_SQL = """
    SELECT p.label::DATE AS day, p.label AS stat_date,
           count(d.vin) FILTER (WHERE d.active_hours > 0) AS vehicles,
           coalesce(sum(d.total_distance), 0) AS total_distance,
           coalesce(sum(d.total_distance_haversine), 0) AS total_distance_haversine,
           sum(d.avg_speed * d.valid_points) / nullif(sum(d.valid_points), 0) AS avg_speed,
           sum(d.invalid_points) / nullif(sum(d.valid_points + d.invalid_points), 0)
               AS invalid_point_share
    FROM {partitions} LEFT JOIN {rows} d ON d.filename = p.file
    GROUP BY p.label
    ORDER BY day
"""


@dataclass(frozen=True)
class Partition:
    """A published partition file and its label: ``'YYYY-MM-DD HH'`` or ``'YYYY-MM-DD'``."""

    label: str
    info: ObjectInfo


@dataclass(frozen=True)
class FleetSeries:
    """Exactly what the dashboard plots (and its metadata tables list)."""

    hourly: pa.Table  # HOURLY_SCHEMA, oldest hour first
    daily: pa.Table  # DAILY_SCHEMA, oldest day first
    positions: pa.Table  # POSITIONS_SCHEMA, a sample of positions_hour's valid positions
    positions_hour: str | None  # stat_hour of the sampled DWD hour; None when there is none
    valid_positions: int  # valid positions in that hour, of which ``positions`` is a sample

    @property
    def empty(self) -> bool:
        return self.hourly.num_rows == 0 and self.daily.num_rows == 0


def newest_partitions(zone: Zone, table: str, count: int, hourly: bool) -> list[Partition]:
    """The newest ``count`` published partitions of ``table``, oldest first, gaps and all.

    Walks the ``dt=`` folders from the newest back and stops as soon as it has enough.
    """
    pattern = _HOUR_FILE if hourly else _DAY_FILE
    found: list[Partition] = []
    days = [name for name in list_folders(zone, f"{table}/") if _DAY_FOLDER.fullmatch(name)]
    for day in reversed(days):
        in_day = []
        for info in zone.list_objects(f"{table}/{day}"):
            match = pattern.fullmatch(info.key.removeprefix(f"{table}/"))
            if match and _is_valid(*match.groups()):
                in_day.append(Partition(" ".join(match.groups()), info))
        found += sorted(in_day, key=lambda p: p.label, reverse=True)
        if len(found) >= count:
            break
    return sorted(found[:count], key=lambda p: p.label)


def gather_fleet_series(
    zone: Zone,
    con: duckdb.DuckDBPyConnection,
    hours: int = HOURS_SHOWN,
    days: int = DAYS_SHOWN,
    max_positions: int = MAX_POSITIONS,
) -> FleetSeries:
    """The series of the newest ``hours`` KPI hours and ``days`` DWS days, and the positions."""
    kpi = newest_partitions(zone, KPI_TABLE, hours, hourly=True)
    dws = newest_partitions(zone, DWS_TABLE, days, hourly=False)
    hourly = _read_series(zone, con, kpi, HOURLY_SQL, HOURLY_SCHEMA)
    daily = _read_series(zone, con, dws, DAILY_SQL, DAILY_SCHEMA)
    positions, positions_hour, valid = POSITIONS_SCHEMA.empty_table(), None, 0
    if kpi:
        newest = HourPartition.from_hive(*kpi[-1].label.split(" "))
        info = zone.stat(partition_relpath(DWD_TABLE, newest))
        if info is not None:
            with zone.fetch_local(info) as local:
                positions, valid = sample_positions(
                    con, f"read_parquet({quote_literal(local)})", max_positions
                )
            positions_hour = newest.stat_hour
    return FleetSeries(hourly, daily, positions, positions_hour, valid)


def sample_positions(
    con: duckdb.DuckDBPyConnection, dwd_source: str, limit: int
) -> tuple[pa.Table, int]:
    """At most ``limit`` valid positions of a DWD hour, and how many valid positions it has.

    The sample is the ``limit`` reports with the smallest hash of (vin, event_time): uniform,
    the same on every run, so the same hour draws the same map. A hash threshold first keeps
    about 1.2 times ``limit`` rows while scanning, so only those are sorted; an 11M-row hour
    costs a fraction of a second and a few hundred MB (a plain top-N over the hour takes 1 GB).
    """
    ((valid,),) = con.sql(f"SELECT count(*) FROM {dwd_source} WHERE loc_valid").fetchall()
    wanted = min(int(limit), int(valid))
    share = min(1.0, SAMPLE_MARGIN * limit / valid) if valid else 1.0
    sample = _hash_sample(con, dwd_source, limit, min(int(share * 2**64), 2**64 - 1))
    if sample.num_rows < wanted:  # the threshold kept too few (vanishingly rare): no threshold
        sample = _hash_sample(con, dwd_source, limit, 2**64 - 1)
    return sample.cast(POSITIONS_SCHEMA), int(valid)


def _hash_sample(
    con: duckdb.DuckDBPyConnection, dwd_source: str, limit: int, threshold: int
) -> pa.Table:
    return con.sql(
        f"""SELECT lng, lat, speed FROM {dwd_source}
            WHERE loc_valid AND hash(vin, event_time) <= {threshold}::UBIGINT
            ORDER BY hash(vin, event_time), vin, event_time, lng, lat, speed
            LIMIT {int(limit)}"""
    ).to_arrow_table()


def _read_series(
    zone: Zone,
    con: duckdb.DuckDBPyConnection,
    partitions: Sequence[Partition],
    query: str,
    schema: pa.Schema,
) -> pa.Table:
    """Run ``query`` over the partitions' files, each row joined to its partition's label."""
    if not partitions:
        return schema.empty_table()
    with _fetched(zone, partitions) as files:
        labels = ", ".join(
            f"({quote_literal(p.label)}, {quote_literal(f)})"
            for p, f in zip(partitions, files, strict=True)
        )
        paths = ", ".join(quote_literal(f) for f in files)
        sql = query.format(
            partitions=f"(VALUES {labels}) p(label, file)",
            rows=f"read_parquet([{paths}], filename = true)",
        )
        return con.sql(sql).to_arrow_table().cast(schema)


@contextlib.contextmanager
def _fetched(zone: Zone, partitions: Sequence[Partition]) -> Iterator[list[str]]:
    """Local files holding exactly the listed partitions (on S3, fetched; locally, in place)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(zone.fetch_local(p.info)) for p in partitions]


def _is_valid(dt: str, hh: str | None = None) -> bool:
    try:
        HourPartition.from_hive(dt, hh or "00")
    except BadPartitionKey:
        return False
    return True
