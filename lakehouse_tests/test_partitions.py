"""Partition keys map to the hive layout; bad keys are refused with a clear error."""

from __future__ import annotations

import dagster as dg
import pytest

from lakehouse.partitions import BadPartitionKey, HourPartition, hourly_partitions
from lakehouse_tests.conftest import materialize_hour


def test_key_maps_to_hive_path_and_stat_hour():
    hour = HourPartition.from_key("2025-09-17-23:00")
    assert hour.hive_path == "dt=2025-09-17/hh=23"
    assert hour.stat_hour == "2025-09-17 23"
    assert HourPartition.from_hive("2025-09-17", "23") == hour
    assert hour.end.hour == 0 and hour.end.day == 18


@pytest.mark.parametrize(
    "key", ["2025-09-17", "2025-09-17-23:30", "2025-13-01-00:00", "2025-02-30-01:00", "", "x"]
)
def test_bad_keys_are_refused(key):
    with pytest.raises(BadPartitionKey, match="partition key"):
        HourPartition.from_key(key)


def test_partition_keys_agree_with_dagster():
    keys = hourly_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange("2025-09-17-22:00", "2025-09-18-01:00")
    )
    assert [HourPartition.from_key(k).hive_path for k in keys] == [
        "dt=2025-09-17/hh=22",
        "dt=2025-09-17/hh=23",
        "dt=2025-09-18/hh=00",
        "dt=2025-09-18/hh=01",
    ]


def test_dagster_refuses_a_key_outside_the_partitions(local_storage, catalog):
    with pytest.raises(dg.DagsterUnknownPartitionError, match="1999-01-01-00:00"):
        materialize_hour(
            local_storage, catalog, partition=HourPartition.from_key("1999-01-01-00:00")
        )
