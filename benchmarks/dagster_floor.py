"""The Dagster floor: two trivial hourly assets, materialised the way the project's hour is.

    dagster asset materialize -m benchmarks.dagster_floor --select '*' --partition <hour>

Whatever this costs (process start, imports, definitions, instance, run and event storage, step
execution) is what any Dagster run of an hour pays before doing work.
"""

import dagster as dg

from lakehouse.partitions import hourly_partitions


@dg.asset(partitions_def=hourly_partitions)
def first_layer() -> None:
    """Does nothing."""


@dg.asset(partitions_def=hourly_partitions, deps=[first_layer])
def second_layer() -> None:
    """Does nothing."""


defs = dg.Definitions(assets=[first_layer, second_layer], executor=dg.in_process_executor)
