"""pandas peer: the hour's DWD and ADS as a notebook would write them, for comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.orc as orc

from benchmarks.baseline_cli import parse_peer_args

COLUMNS = ["vin", "report_time", "lng", "lat", "speed"]
KEY = ["vin", "event_time", "lng", "lat", "speed"]


def main() -> None:
    parquet, orc_files, stat_hour, out = parse_peer_args(__doc__)
    frames = [pd.read_parquet(f, columns=COLUMNS) for f in parquet]
    frames += [orc.read_table(f, columns=COLUMNS).to_pandas() for f in orc_files]
    raw = pd.concat(frames, ignore_index=True)

    event_time = pd.to_datetime(raw["report_time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    speed = raw["speed"].astype("float64")
    keep = (
        raw["vin"].notna()
        & (raw["vin"].str.strip() != "")
        & np.isfinite(speed)
        & speed.between(0, 500)
        & event_time.notna()
    )
    dwd = raw.loc[keep, ["vin", "lng", "lat", "speed"]].assign(event_time=event_time[keep])
    dwd = dwd.drop_duplicates(subset=KEY)
    finite = np.isfinite(dwd["lng"]) & np.isfinite(dwd["lat"])
    dwd["loc_valid"] = finite & dwd["lng"].between(70, 140) & dwd["lat"].between(10, 60)
    dwd[["vin", "event_time", "lng", "lat", "speed", "loc_valid"]].to_parquet(
        out / "dwd.parquet", index=False
    )

    valid = dwd[dwd["loc_valid"]].sort_values(KEY, kind="stable")
    by_vin = valid.groupby("vin", sort=False)
    dlng = (valid["lng"] - by_vin["lng"].shift()).abs() * 111
    dlat = (valid["lat"] - by_vin["lat"].shift()).abs() * 111
    planar = np.sqrt(dlng**2 + dlat**2).fillna(0.0)
    lat1, lat2 = np.radians(by_vin["lat"].shift()), np.radians(valid["lat"])
    dphi, dlmb = lat2 - lat1, np.radians(valid["lng"] - by_vin["lng"].shift())
    a = np.sin(dphi / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(dlmb / 2) ** 2
    haversine = (2 * 6371.0 * np.arcsin(np.sqrt(a))).fillna(0.0)
    ads = (
        valid.assign(planar=planar, haversine=haversine)
        .groupby("vin")
        .agg(
            total_distance=("planar", "sum"),
            total_distance_haversine=("haversine", "sum"),
            avg_speed=("speed", "mean"),
        )
        .reset_index()
    )
    ads.insert(1, "stat_hour", stat_hour)
    ads.to_parquet(out / "ads.parquet", index=False)


if __name__ == "__main__":
    main()
