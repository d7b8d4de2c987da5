"""Vehicle lakehouse: raw GPS files -> ODS -> DWD -> ADS (and what is built on them) on Dagster."""

import warnings

# pandera imports pyspark.pandas whenever pyspark is installed (the dev extra has it for the
# Spark engine and share tests); pyspark then warns that it does not support pandas 3. The
# lakehouse never uses pyspark.pandas, so that one warning is noise in every process.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
