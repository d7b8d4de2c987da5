"""Storage faults: which failures are the store's (retry, then fail loudly) and which are config.

A raw file is only ever judged bad on bytes we actually hold: reading and parsing are separate
steps (see :meth:`Zone.fetch_local`), so an exception while *fetching* is an I/O fault of the
store (throttling, timeout, reset, 5xx, an object that vanished or changed) and an exception
while *parsing* is the file's own. I/O faults are retried with exponential backoff and jitter
(tenacity, on top of botocore's own retries); if they persist they surface as
:class:`TransientStorageError`, which fails the step with the published partition intact and is
never turned into a quarantine verdict.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

T = TypeVar("T")

# Requests per operation, retried by botocore with backoff on throttling, 5xx and resets.
DEFAULT_ATTEMPTS = 5
# Whole operations, retried by tenacity: what botocore cannot retry (a body that broke off
# mid-stream) and what outlasted its attempts.
OPERATION_ATTEMPTS = 3
# Status codes an S3-protocol store answers when it is overloaded or briefly broken.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)
# A listed object that is gone or different by the time it is read: the hour's file set moved.
VANISHED_CODES = frozenset({"NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"})
CONFIG_CODES = frozenset(
    {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
)


class StorageConfigError(ValueError):
    """A storage URL, bucket or credential that cannot work (the message never echoes secrets)."""


class TransientStorageError(OSError):
    """The store kept failing after retries; the step fails and nothing is quarantined."""


class ObjectChanged(TransientStorageError):
    """An object vanished or changed between listing and reading: the file set moved."""


def s3_error_code(exc: BaseException) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def is_transient(exc: BaseException) -> bool:
    """True for faults worth retrying: throttling, 5xx, timeouts, resets, dropped streams."""
    if isinstance(exc, TransientStorageError):
        return not isinstance(exc, ObjectChanged)
    code, status = s3_error_code(exc)
    if code or status:
        return code in RETRYABLE_CODES or status in RETRYABLE_STATUS
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:  # pragma: no cover - boto3 comes with dagster-aws
        BotoCoreError = ()
    if isinstance(exc, BotoCoreError):
        return True  # connection, timeout, incomplete read, streaming errors
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError) and exc.errno in {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT}


def retrying(
    what: str,
    attempts: int = OPERATION_ATTEMPTS,
    initial_wait: float = 0.2,
    max_wait: float = 5.0,
) -> Retrying:
    """A tenacity policy for one storage operation, described by ``what`` in the final error."""

    def give_up(state: RetryCallState) -> None:
        cause = state.outcome.exception() if state.outcome else None
        raise TransientStorageError(
            f"{what}: still failing after {state.attempt_number} attempts: {describe(cause)}"
        ) from cause

    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=initial_wait, max=max_wait),
        retry=retry_if_exception(is_transient),
        retry_error_callback=give_up,
        reraise=False,
    )


def call_with_retries(what: str, fn: Callable[[], T], attempts: int = OPERATION_ATTEMPTS) -> T:
    """Run ``fn``, retrying transient faults; raise :class:`TransientStorageError` if they last."""
    return retrying(what, attempts)(fn)


def describe(exc: BaseException | None) -> str:
    """A one-line, secret-free description of a storage exception."""
    if exc is None:
        return "unknown error"
    code, status = s3_error_code(exc)
    if code or status:
        return f"{type(exc).__name__} {code or status} (HTTP {status})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def store_errors() -> tuple[type[BaseException], ...]:
    """Exception types a store operation raises when the store (not the data) failed.

    For ``except store_errors():``, which is evaluated only when an exception is raised, so
    botocore is imported only then.
    """
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 comes with dagster-aws
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)
