"""The sensor that evaluates the assets' automation conditions, on by default.

Dagster adds a default automation sensor only when none targets the assets, and that one starts
stopped; the lakehouse relies on it (DWS follows its hours, KPIs and shares follow ADS, the
dashboard follows new hours), so it declares its own, running.
"""

import dagster as dg

lakehouse_automation = dg.AutomationConditionSensorDefinition(
    name="lakehouse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition: daily rollups as hours land, "
    "late hours re-triggering their day, layers following an hour materialised alone.",
)
