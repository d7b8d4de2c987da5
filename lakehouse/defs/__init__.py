"""Dagster definitions by layer: each sub-package holds its assets, transforms and schema."""
