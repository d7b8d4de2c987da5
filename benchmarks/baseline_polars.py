"""polars peer: the hour's DWD and ADS with polars' lazy, multi-threaded engine, for comparison."""

from __future__ import annotations

import polars as pl
import pyarrow.orc as orc

from benchmarks.baseline_cli import parse_peer_args

COLUMNS = ["vin", "report_time", "lng", "lat", "speed"]
KEY = ["vin", "event_time", "lng", "lat", "speed"]


def main() -> None:
    parquet, orc_files, stat_hour, out = parse_peer_args(__doc__)
    frames = [pl.scan_parquet(parquet).select(COLUMNS)] if parquet else []
    frames += [pl.from_arrow(orc.read_table(f, columns=COLUMNS)).lazy() for f in orc_files]
    raw = pl.concat(frames, how="vertical_relaxed").with_columns(
        pl.col("lng", "lat", "speed").cast(pl.Float64)
    )
    event_time = pl.col("report_time").str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False)
    dwd = (
        raw.with_columns(event_time.alias("event_time"))
        .filter(
            pl.col("vin").is_not_null()
            & (pl.col("vin").str.strip_chars() != "")
            & pl.col("speed").is_finite()
            & pl.col("speed").is_between(0, 500)
            & pl.col("event_time").is_not_null()
        )
        .unique(subset=KEY)
        .with_columns(
            (
                pl.col("lng").is_finite()
                & pl.col("lat").is_finite()
                & pl.col("lng").is_between(70, 140)
                & pl.col("lat").is_between(10, 60)
            )
            .fill_null(False)
            .alias("loc_valid")
        )
        .select(["vin", "event_time", "lng", "lat", "speed", "loc_valid"])
        .collect()
    )
    dwd.write_parquet(out / "dwd.parquet")

    valid = dwd.lazy().filter(pl.col("loc_valid")).sort(KEY)
    prev_lng, prev_lat = pl.col("lng").shift().over("vin"), pl.col("lat").shift().over("vin")
    planar = (((pl.col("lng") - prev_lng).abs() * 111) ** 2 + ((pl.col("lat") - prev_lat).abs()
              * 111) ** 2).sqrt().fill_null(0.0)  # fmt: skip
    lat1, lat2 = prev_lat.radians(), pl.col("lat").radians()
    dlmb = (pl.col("lng") - prev_lng).radians()
    a = ((lat2 - lat1) / 2).sin() ** 2 + lat1.cos() * lat2.cos() * (dlmb / 2).sin() ** 2
    haversine = (2 * 6371.0 * a.sqrt().arcsin()).fill_null(0.0)
    ads = (
        valid.with_columns(planar.alias("planar"), haversine.alias("haversine"))
        .group_by("vin")
        .agg(
            pl.col("planar").sum().alias("total_distance"),
            pl.col("haversine").sum().alias("total_distance_haversine"),
            pl.col("speed").mean().alias("avg_speed"),
        )
        .with_columns(pl.lit(stat_hour).alias("stat_hour"))
        .select(["vin", "stat_hour", "total_distance", "total_distance_haversine", "avg_speed"])
        .sort("vin")
        .collect()
    )
    ads.write_parquet(out / "ads.parquet")


if __name__ == "__main__":
    main()
