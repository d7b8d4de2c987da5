"""Dagster resources: the object store and the DuckDB engine/catalog."""

from lakehouse.resources.storage import LakehouseStorage, Zone

__all__ = ["LakehouseStorage", "Zone"]
