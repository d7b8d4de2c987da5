"""The Dagster floor: two trivial hourly assets, materialised the way the project's hour is.

    dagster asset materialize -m benchmarks.dagster_floor --select '*' --partition <hour>

Whatever this costs (process start, imports, definitions, instance, run and event storage, step
execution, the interpreter's exit) is what any Dagster run of an hour pays before doing work.
It imports nothing of the lakehouse: the partitions are declared here as the lakehouse declares
them, so the floor is Dagster's own and none of the lakehouse's process tuning (the heap freeze
of ``lakehouse.deployment.heap``) lowers it.
"""

import dagster as dg

# The partitions ``lakehouse.partitions`` declares by default (the benchmark's hour is in them).
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date="2025-09-01-00:00", timezone="UTC", end_offset=1
)


@dg.asset(partitions_def=hourly_partitions)
def first_layer() -> None:
    """Does nothing."""


@dg.asset(partitions_def=hourly_partitions, deps=[first_layer])
def second_layer() -> None:
    """Does nothing."""


defs = dg.Definitions(assets=[first_layer, second_layer], executor=dg.in_process_executor)
