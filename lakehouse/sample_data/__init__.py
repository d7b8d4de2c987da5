"""Sample raw GPS data: the stand-in for the fleet uploaders when no real feed is at hand."""

from lakehouse.sample_data.generator import (
    RAW_DATASET,
    RAW_SCHEMA,
    GenerationReport,
    generate_reports,
    raw_hour_dir,
    write_sample_data,
)

__all__ = [
    "RAW_DATASET",
    "RAW_SCHEMA",
    "GenerationReport",
    "generate_reports",
    "raw_hour_dir",
    "write_sample_data",
]
