"""Vehicle lakehouse: raw GPS files -> ODS -> DWD -> ADS, on Dagster, DuckDB and Arrow."""
