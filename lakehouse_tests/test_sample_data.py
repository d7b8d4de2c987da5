"""The sample generator is the stand-in for the upstream feed, so its contract is tested here."""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lakehouse.cli import main
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.sample_data import RAW_SCHEMA, GenerationReport, raw_hour_dir, write_sample_data
from lakehouse.sample_data.generator import WouldOverwrite

START = datetime(2025, 9, 17, 23)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _zone(root: Path) -> Zone:
    return LakehouseStorage(raw_url=str(root)).raw(create=True)


def _read(zone: Zone, rel: str) -> pa.Table:
    path = zone.path(rel)
    return orc.read_table(path) if rel.endswith(".orc") else pq.read_table(path)


def _read_all(zone: Zone, report: GenerationReport) -> pa.Table:
    return pa.concat_tables(_read(zone, rel) for rel in report.files)


def _read_hour(zone: Zone, report: GenerationReport, hour: datetime) -> pd.DataFrame:
    files = [f for f in report.files if posixpath.dirname(f) == raw_hour_dir(hour)]
    return pa.concat_tables(_read(zone, f) for f in files).to_pandas()


def _parse(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times, format=TIME_FORMAT, errors="coerce")


def test_same_seed_gives_identical_data(tmp_path: Path) -> None:
    a, b = _zone(tmp_path / "a"), _zone(tmp_path / "b")
    kwargs = {"start": START, "hours": 2, "vehicles": 7, "interval_s": 30, "dirty": True}
    report_a = write_sample_data(a, **kwargs)
    report_b = write_sample_data(b, **kwargs)
    assert report_a == report_b
    assert _read_all(a, report_a).equals(_read_all(b, report_b))
    for rel in report_a.junk_files:
        assert a.read_bytes(rel) == b.read_bytes(rel)


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    a, b = _zone(tmp_path / "a"), _zone(tmp_path / "b")
    report_a = write_sample_data(a, start=START, vehicles=5, interval_s=60, seed=1)
    report_b = write_sample_data(b, start=START, vehicles=5, interval_s=60, seed=2)
    assert report_a.files == report_b.files
    assert not _read_all(a, report_a).equals(_read_all(b, report_b))


def test_clean_row_counts_per_hour(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(
        zone, start=START, hours=2, vehicles=3, interval_s=60, files_per_hour=2
    )
    expected = 3 * 3600 // 60  # 180 reports per hour
    assert report.rows_per_hour == {START: expected, START + timedelta(hours=1): expected}
    for hour in report.rows_per_hour:
        frame = _read_hour(zone, report, hour)
        assert len(frame) == expected
        assert frame.groupby("vin").size().to_dict() == {
            "VIN000001": 60,
            "VIN000002": 60,
            "VIN000003": 60,
        }
    assert report.dirt == {}
    assert report.junk_files == ()


def test_layout_and_schema(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, hours=2, vehicles=8, interval_s=60)
    assert len(report.files) == 2 * 4
    dirs = sorted({posixpath.dirname(f) for f in report.files})
    assert dirs == [
        "ods_vehicle_gps_raw/dt=2025-09-17/hh=23",
        "ods_vehicle_gps_raw/dt=2025-09-18/hh=00",
    ]
    for rel in report.files:
        assert zone.exists(rel)
        assert _read(zone, rel).schema == RAW_SCHEMA


def test_mixed_format_writes_parquet_and_orc(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, vehicles=4, interval_s=60, file_format="mixed")
    suffixes = sorted(posixpath.splitext(f)[1] for f in report.files)
    assert suffixes == [".orc", ".orc", ".parquet", ".parquet"]
    only = write_sample_data(_zone(tmp_path / "p"), start=START, vehicles=4, file_format="orc")
    assert all(f.endswith(".orc") for f in only.files)


def test_report_times_parse_and_fall_inside_the_hour(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, hours=2, vehicles=6, interval_s=20)
    for hour in report.rows_per_hour:
        frame = _read_hour(zone, report, hour)
        parsed = _parse(frame["report_time"])
        assert parsed.notna().all()
        assert parsed.min() >= hour
        assert parsed.max() < hour + timedelta(hours=1)
        gaps = parsed.groupby(frame["vin"]).diff().dropna().dt.total_seconds()
        assert set(gaps) == {20.0}


def test_rows_sorted_by_report_time_then_vin(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, vehicles=9, interval_s=30, files_per_hour=2)
    for rel in report.files:
        frame = _read(zone, rel).to_pandas()
        keys = list(zip(frame["report_time"], frame["vin"], strict=True))
        assert keys == sorted(keys)
        assert frame["vin"].nunique() in (4, 5)  # 9 vehicles split over 2 uploaders


def test_coordinates_and_speeds_are_plausible(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, hours=2, vehicles=20, interval_s=10)
    frame = _read_all(zone, report).to_pandas()
    assert frame.notna().all().all()
    assert frame["lng"].between(118.5, 121.5).all()
    assert frame["lat"].between(28.5, 31.5).all()
    assert frame["speed"].between(0.0, 120.0).all()
    assert frame["vin"].str.fullmatch(r"VIN\d{6}").all()
    assert (frame["device_id"].str[3:] == frame["vin"].str[3:]).all()


def test_positions_continue_across_hours(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, hours=2, vehicles=10, interval_s=10)
    frame = _read_all(zone, report).to_pandas()
    frame["ts"] = _parse(frame["report_time"])
    frame = frame.sort_values(["vin", "ts"])
    steps = frame.groupby("vin")[["lng", "lat"]].diff().dropna()
    step_km = np.hypot(steps["lat"] * 111.32, steps["lng"] * 111.32 * np.cos(np.radians(30)))
    # 120 km/h for 10 s is 0.33 km; a jump at the hour boundary would be far larger.
    assert step_km.max() < 0.4
    assert step_km.mean() > 0.01


def test_dirty_mode_injects_every_kind_of_dirt(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, vehicles=20, interval_s=10, dirty=True)
    frame = _read_all(zone, report).to_pandas()
    assert all(count > 0 for count in report.dirt.values())
    assert set(report.dirt) == {
        "null_vin",
        "negative_speed",
        "bad_coordinates",
        "bad_report_time",
        "duplicate_rows",
    }
    first = ~frame.duplicated()  # kinds are exclusive per row; duplicates repeat them
    bad_coords = ~frame["lng"].between(-180, 180) | ~frame["lat"].between(-90, 90)
    zero_fix = (frame["lng"] == 0) & (frame["lat"] == 0)
    assert (frame["vin"].isna() & first).sum() == report.dirt["null_vin"]
    assert ((frame["speed"] < 0) & first).sum() == report.dirt["negative_speed"]
    assert ((bad_coords | zero_fix) & first).sum() == report.dirt["bad_coordinates"]
    bad_times = _parse(frame["report_time"]).isna()
    assert (bad_times & first).sum() == report.dirt["bad_report_time"]
    assert set(frame.loc[bad_times, "report_time"].str[:4]) <= {"2025", "N/A", ""}
    assert frame.duplicated().sum() == report.dirt["duplicate_rows"]
    assert report.total_rows == len(frame) == 20 * 360 + report.dirt["duplicate_rows"]
    assert sum(report.dirt.values()) < 0.1 * len(frame)


def test_dirty_mode_writes_junk_files(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    report = write_sample_data(zone, start=START, hours=2, vehicles=4, interval_s=60, dirty=True)
    assert report.junk_counts == {
        "ds_store": 2,
        "success_marker": 2,
        "empty_parquet": 2,
        "corrupt_parquet": 2,
        "wrong_schema": 2,
        "temp_upload": 4,
    }
    assert len(report.junk_files) == 14
    folder = raw_hour_dir(START)
    assert zone.read_bytes(f"{folder}/.DS_Store")
    assert zone.read_bytes(f"{folder}/_SUCCESS") == b""
    assert zone.read_bytes(f"{folder}/empty.parquet") == b""
    corrupt = zone.read_bytes(f"{folder}/corrupt.parquet")
    assert corrupt.startswith(b"PAR1")
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(zone.path(f"{folder}/corrupt.parquet"))
    wrong = pq.read_table(zone.path(f"{folder}/wrong_schema.parquet"))
    assert wrong.column_names == ["vin", "ts", "longitude", "latitude"]
    temp = [f for f in report.junk_files if f.endswith((".inprogress", ".tmp"))]
    assert len(temp) == 4
    assert all(zone.exists(f) for f in report.junk_files)
    assert not set(report.junk_files) & set(report.files)


@pytest.mark.parametrize(
    "start",
    [
        datetime(2025, 9, 17, 23, 30),
        datetime(2025, 9, 17, 23, tzinfo=UTC),
    ],
)
def test_start_must_be_naive_and_on_the_hour(tmp_path: Path, start: datetime) -> None:
    with pytest.raises(ValueError, match="start"):
        write_sample_data(_zone(tmp_path / "raw"), start=start)


def test_cli_writes_files_and_prints_a_summary(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    args = ["generate", "--raw-url", str(raw), "--vehicles", "6", "--interval", "60"]
    more = ["--hours", "2", "--start", "2025-09-17T23:00", "--dirty", "--files-per-hour", "3"]
    result = CliRunner().invoke(main, [*args, *more])
    assert result.exit_code == 0, result.output
    out = result.output
    zone = _zone(raw)
    paths = [posixpath.relpath(f.path, zone.root) for f in zone.list_files("", recursive=True)]
    data = [p for p in paths if posixpath.basename(p).startswith("part-")]
    rows = sum(_read(zone, p).num_rows for p in data)
    assert len(data) == 6
    assert f"Wrote 6 data files (4 parquet, 2 orc) with {rows:,} rows over 2 hour(s)" in out
    assert "null_vin" in out
    names = {p.name for p in (raw / raw_hour_dir(START)).iterdir()}
    assert {"part-23-000.parquet", "part-23-001.orc", "part-23-002.parquet", "_SUCCESS"} <= names


def test_cli_rejects_a_start_off_the_hour(tmp_path: Path) -> None:
    args = ["generate", "--raw-url", str(tmp_path / "raw"), "--start", "2025-09-17T23:15"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "truncated to the hour" in result.output


def test_generating_again_never_silently_replaces_other_data(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "raw")
    first = write_sample_data(zone, start=START, vehicles=6, interval_s=60, dirty=True)
    before = {rel: zone.read_bytes(rel) for rel in first.files}
    # The same arguments find identical files: nothing to do, nothing refused.
    assert write_sample_data(zone, start=START, vehicles=6, interval_s=60, dirty=True) == first
    with pytest.raises(WouldOverwrite, match="already exists with other data"):
        write_sample_data(zone, start=START, vehicles=6, interval_s=60, seed=7)
    assert {rel: zone.read_bytes(rel) for rel in first.files} == before
    result = CliRunner().invoke(
        main, ["generate", "--raw-url", str(tmp_path / "raw"), "--vehicles", "6", "--seed", "7"]
    )
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert {rel: zone.read_bytes(rel) for rel in first.files} == before
    write_sample_data(zone, start=START, vehicles=6, interval_s=60, seed=7, overwrite=True)
    assert {rel: zone.read_bytes(rel) for rel in first.files} != before
