"""Vehicle lakehouse: raw GPS files -> ODS -> DWD -> ADS (and what is built on them) on Dagster."""

import warnings

from lakehouse.deployment.heap import freeze_loaded_heap

# What the host process loaded before the lakehouse (Dagster itself, under a Dagster command)
# stays loaded; freezing it now keeps the imports below from triggering full collections of it.
freeze_loaded_heap()

# pandera imports pyspark.pandas whenever pyspark is installed (the dev extra has it for the
# Spark engine and share tests); pyspark then warns that it does not support pandas 3. The
# lakehouse never uses pyspark.pandas, so that one warning is noise in every process.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
