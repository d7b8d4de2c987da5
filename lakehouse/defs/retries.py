"""How a step reacts to storage faults: retry the step later, or fail with a clear message.

Storage operations already retry a transient fault a few times within seconds (see
``lakehouse.resources.faults``). When a fault outlasts that (an outage, sustained throttling), the
step asks Dagster to run it again after an exponentially growing pause; the partitions published
before stay as they are. A configuration error (missing bucket or raw zone, refused credentials)
fails at once: waiting will not fix it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from lakehouse.resources.faults import StorageConfigError, TransientStorageError

STEP_RETRIES = 3
FIRST_PAUSE_SECONDS = 5.0
PAUSE_ENV = "LAKEHOUSE_STEP_RETRY_SECONDS"


def first_pause_seconds() -> float:
    """Pause before the first step retry (doubling after); a deployment setting."""
    return float(os.environ.get(PAUSE_ENV, FIRST_PAUSE_SECONDS))


@contextmanager
def storage_faults_handled(context: dg.AssetExecutionContext) -> Iterator[None]:
    """Turn lasting transient faults into step retries and config errors into clear failures."""
    try:
        yield
    except TransientStorageError as fault:
        pause = first_pause_seconds() * 2**context.retry_number
        context.log.warning(f"storage fault, step retry in {pause:.0f} s: {fault}")
        raise dg.RetryRequested(max_retries=STEP_RETRIES, seconds_to_wait=pause) from fault
    except StorageConfigError as error:
        raise dg.Failure(description=f"storage configuration: {error}") from None
