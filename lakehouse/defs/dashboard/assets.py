"""The ``fleet_dashboard`` asset: gather the series, draw them, publish the PNG, show it in the UI.

The PNG is written to ``<warehouse>/_dashboards/fleet_dashboard.png`` in one visible step (a
rename locally, a single PUT on S3) and embedded in the materialization's metadata as Markdown,
so the asset's page in the Dagster UI shows it, with the numbers behind it as two tables.
An empty warehouse is not an error: the dashboard says there is no data yet, so the nightly job
of a new deployment stays green.
"""

import base64

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from lakehouse.defs.dashboard.automation import dashboard_refresh_condition
from lakehouse.defs.dashboard.series import (
    DAYS_SHOWN,
    HOURS_SHOWN,
    FleetSeries,
    gather_fleet_series,
)
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import DWD_TABLE, DWS_TABLE, KPI_TABLE

DASHBOARD_ASSET = "fleet_dashboard"
DASHBOARD_KEY = "_dashboards/fleet_dashboard.png"
IMAGE_ENTRY = "dashboard"
HOURLY_ENTRY, DAILY_ENTRY = "hourly_series", "daily_series"


@dg.asset(
    name=DASHBOARD_ASSET,
    group_name="dashboard",
    deps=[KPI_TABLE, DWS_TABLE, DWD_TABLE],
    kinds={"duckdb", "matplotlib"},
    automation_condition=dashboard_refresh_condition(),
    description=f"The fleet at a glance: mileage, active vehicles, mean speed and invalid-location "
    f"share over the newest {HOURS_SHOWN} hours and {DAYS_SHOWN} days with data, and a map of "
    "the newest hour's positions.",
)
def fleet_dashboard(
    context: dg.AssetExecutionContext, storage: LakehouseStorage, engine: DuckDBResource
) -> dg.MaterializeResult:
    """The fleet's recent hours and days as one picture, for the asset's page and the warehouse."""
    with storage_faults_handled(context):
        warehouse = storage.warehouse()
        with engine.get_connection() as con:
            series = gather_fleet_series(warehouse, con)
        # matplotlib costs half a second to import: only the dashboard's own step pays it.
        from lakehouse.defs.dashboard.plot import SIZE_PX, render_dashboard

        png = render_dashboard(series)
        warehouse.write_bytes(DASHBOARD_KEY, png)
    if series.empty:
        context.log.warning("fleet_dashboard: no KPI hours or DWS days yet; drew an empty one")
    return dg.MaterializeResult(
        metadata={
            IMAGE_ENTRY: dg.MetadataValue.md(markdown_image(png)),
            "path": dg.MetadataValue.path(warehouse.display(warehouse.path(DASHBOARD_KEY))),
            "png_bytes": len(png),
            "size_px": f"{SIZE_PX[0]} x {SIZE_PX[1]}",
            **series_summary(series),
            HOURLY_ENTRY: series_table(series.hourly.drop_columns(["hour"])),
            DAILY_ENTRY: series_table(series.daily.drop_columns(["day"])),
        }
    )


def markdown_image(png: bytes) -> str:
    """The PNG inline, as Markdown the UI renders (no second request, no file server)."""
    return f"![Fleet dashboard](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def series_summary(series: FleetSeries) -> dict[str, object]:
    """How much the picture was drawn from, so a thin or empty one is plain from the metadata."""

    def newest(table: pa.Table, column: str) -> str:
        return table.column(column)[-1].as_py() if table.num_rows else "none"

    return {
        "hours_shown": series.hourly.num_rows,
        "days_shown": series.daily.num_rows,
        "newest_hour": newest(series.hourly, "stat_hour"),
        "newest_day": newest(series.daily, "stat_date"),
        "positions_shown": series.positions.num_rows,
        "positions_in_newest_hour": series.valid_positions,
    }


def series_table(table: pa.Table) -> dg.TableMetadataValue:
    """A plotted series, row for row, as a table in the UI."""
    columns = [dg.TableColumn(f.name, str(f.type)) for f in table.schema]
    return dg.MetadataValue.table(
        [dg.TableRecord(row) for row in table.to_pylist()], schema=dg.TableSchema(columns=columns)
    )
