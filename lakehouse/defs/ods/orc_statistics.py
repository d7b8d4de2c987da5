"""ORC files' string sizes, bounded from their statistics in memory-capped child processes.

ORC footers hold every column's full min and max strings (a 100 MiB VIN is 100 MiB of footer
once decompressed) and are only parsed whole, so they are parsed first in a short-lived child
process with a capped data segment: a hostile footer makes that file's answer a fault, not the
run's memory. The child loads only pyorc and :mod:`bounds` (no pyarrow, whose import alone took
~0.1 s of the child's ~0.13 s); the parent reads the schema with pyarrow only for files the
child accepted, whose footers it has bounded (:data:`FOOTER_STRING_BYTES`).

The child answers one line per file as it goes, so a file that crashes pyorc (a signal) or
stalls it is the one refused, and the files after it are judged by a fresh child.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from lakehouse.defs.ods.bounds import FileFault, batch_rows, check_declared_size, one_line
from lakehouse.rules import STRING_LIMITS

# Memory an ORC footer may take to parse; legitimate footers need a few MB at most.
ORC_FOOTER_MEMORY = 512 << 20
# Time one file's footer and statistics may take to read.
ORC_CHECK_TIMEOUT_S = 120
# A stripe declaring at most this many bytes (strings, and 8 per number) is decoded at once;
# a larger one, or one without statistics, is streamed in batches of ``batch_rows``.
WHOLE_STRIPE_BYTES = 256 << 20
NUMBER_BYTES = 8 * 3  # lng, lat, speed
# Min and max strings a footer may hold (all columns): what the parent's own parse may cost.
# An ODS footer holds a few per column, each within its column's limit (64 KiB at most).
FOOTER_STRING_BYTES = 16 << 20
STRING_KINDS = ("string", "varchar", "char")


def bounded_in_child(files: Sequence[tuple[str, bool]]) -> list[dict]:
    """Per file, ``{"rows", "batch_rows", "whole_stripes"}`` or ``{"fault"}``, from capped children.

    ``files``: a path, and whether it holds the whole file (else only its tail, as discovery
    reads it). One child judges them all unless one crashes or stalls it: that file is refused
    and the rest go to a new child. Raises ``RuntimeError`` if a child fails in a way no file
    can cause (it cannot start, or exits with an error of its own).
    """
    answers: list[dict] = []
    while len(answers) < len(files):
        pending = files[len(answers) :]
        answered, fault = _one_child(pending)
        answers += answered
        if fault is not None:
            answers.append({"fault": fault})  # the file the child was reading
    return answers


def _one_child(files: Sequence[tuple[str, bool]]) -> tuple[list[dict], str | None]:
    """Answers of one child, in order, and why it stopped early (then at the next file)."""
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        try:
            with contextlib.suppress(BrokenPipeError):  # it failed to start: told below
                child.stdin.write(json.dumps(list(files)).encode())
                child.stdin.close()
            answered, stalled = _read_answers(child, len(files))
        finally:
            if child.poll() is None:  # stalled, or done answering: its teardown is not needed
                child.kill()
            child.wait()
            child.stdout.close()
        if len(answered) == len(files):
            return answered, None
        if stalled:
            return answered, f"its ORC footer took more than {ORC_CHECK_TIMEOUT_S} s to read"
        if child.returncode < 0:
            name = signal.Signals(-child.returncode).name
            return answered, f"the capped ORC footer reader died reading it ({name}): refused"
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"the ORC footer checker failed (exit {child.returncode}): {message}")


def _read_answers(child: subprocess.Popen, expected: int) -> tuple[list[dict], bool]:
    """The child's answer lines until it ends; True if it went silent for a whole file's time."""
    answered: list[dict] = []
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + ORC_CHECK_TIMEOUT_S
        while len(answered) < expected:
            if not selector.select(max(deadline - time.monotonic(), 0)):
                return answered, True
            chunk = os.read(child.stdout.fileno(), 1 << 16)
            if not chunk:
                return answered, False
            *lines, pending = (pending + chunk).split(b"\n")
            answered += [json.loads(line) for line in lines]
            if lines:
                deadline = time.monotonic() + ORC_CHECK_TIMEOUT_S
    return answered, False


def string_bounds(path: str, whole: bool) -> dict:
    """One ORC file's rows, batch size and whether its stripes may be decoded at once, from its
    statistics; raises :class:`FileFault`.

    The file's statistics (in its footer) bound the whole file; a whole file is also bounded
    stripe by stripe, as it is decoded. pyorc reads a stripe's statistics from the stripe's row
    index, which is data, not tail, so a tail alone is bounded only as a whole. Statistics are
    read only for string columns: pyorc trusts the declared type to read them.
    """
    import pyorc  # ORC string statistics (declared sizes); pyarrow does not expose them

    with open(path, "rb") as handle:
        reader = pyorc.Reader(handle)
        fields = getattr(reader.schema, "fields", {})  # not a struct: pyarrow's check says so
        strings = {
            name: reader.schema.find_column_id(name)
            for name, kind in fields.items()
            if kind.kind.name.lower() in STRING_KINDS
        }
        in_footer = _statistics_of(reader, strings)  # read once: they are the footer's
        _check_footer_strings(in_footer)
        limited = {name: column for name, column in strings.items() if name in STRING_LIMITS}
        widest_row = _per_row(_declared({name: in_footer[name] for name in limited}))
        widest_stripe = 0  # bytes, or None once a stripe keeps no statistics to bound it by
        for stripe_index in range(reader.num_of_stripes if whole else 0):
            stripe = reader.read_stripe(stripe_index)
            declared = _declared(_statistics_of(stripe, limited))
            widest_row = max(widest_row, _per_row(declared))
            if declared is None or widest_stripe is None:
                widest_stripe = None
            else:
                widest_stripe = max(widest_stripe, declared[1] + NUMBER_BYTES * len(stripe))
        return {
            "rows": len(reader),
            "batch_rows": batch_rows(widest_row),
            # A tail is never decoded; a whole file's stripes are decoded at once if all are small.
            "whole_stripes": whole
            and widest_stripe is not None
            and widest_stripe <= WHOLE_STRIPE_BYTES,
        }


def _check_footer_strings(in_footer: dict[str, dict | None]) -> None:
    """Refuse a footer whose min and max strings would make parsing it costly outside the cap."""
    held = 0
    for stats in in_footer.values():
        for key in ("minimum", "maximum"):
            held += len((stats or {}).get(key, "").encode())
    if held > FOOTER_STRING_BYTES:
        raise FileFault(
            f"its ORC footer holds {held:,} bytes of min/max strings, more than "
            f"{FOOTER_STRING_BYTES:,}: refused before it is parsed outside the capped reader"
        )


def _declared(statistics: dict[str, dict | None]) -> tuple[int, int] | None:
    """Rows and string bytes that limited string columns declare, from their statistics over
    one part of a file; raises if one declares more than its values can hold. None if the part
    keeps no statistics of them."""
    rows = string_bytes = 0
    kept = False
    for name, stats in statistics.items():
        if stats is None:
            continue
        kept = True
        values, declared = stats.get("number_of_values", 0), stats.get("total_length", 0)
        rows = max(rows, values)
        string_bytes += declared
        check_declared_size(name, declared, values, STRING_LIMITS[name])
    return (rows, string_bytes) if kept else None


def _per_row(declared: tuple[int, int] | None) -> float:
    """Bytes per row: the declared strings' share, and the three numbers."""
    rows, string_bytes = declared or (0, 0)
    return string_bytes / rows + NUMBER_BYTES if rows else 1.0


def _statistics_of(part, columns: dict[str, int]) -> dict[str, dict | None]:
    """Each column's statistics over ``part``, a pyorc reader (the file) or stripe."""
    return {name: _statistics(part, name, column_id) for name, column_id in columns.items()}


def _statistics(part, name: str, column_id: int) -> dict | None:
    """A column's statistics over ``part``; None if it keeps none (a stripe without a row
    index: the file's statistics still bound it)."""
    try:
        return part[column_id].statistics
    except UnicodeDecodeError:
        # The column's min or max is not UTF-8, so its declared size cannot be read, and what
        # cannot be bounded is never decoded.
        raise FileFault(
            f"ORC statistics of column {name!r} are not valid UTF-8: its size "
            "cannot be bounded before decoding"
        ) from None
    except IndexError:  # pyorc merges per-row-group statistics, and there are none
        return None


def _child(files: Sequence[tuple[str, bool]]) -> None:
    """In the child: judge each ORC footer under the memory cap, one answer line per file."""
    resource.setrlimit(resource.RLIMIT_DATA, (ORC_FOOTER_MEMORY, ORC_FOOTER_MEMORY))
    for path, whole in files:
        try:
            answer = string_bounds(path, whole)
        except FileFault as fault:
            answer = {"fault": fault.reason}
        except MemoryError:
            answer = {"fault": _too_big()}
        except Exception as exc:
            text = one_line(exc)
            memory = "memory" in text.lower() or "bad_alloc" in text
            answer = {"fault": _too_big() if memory else f"unreadable orc footer: {text}"}
        print(json.dumps(answer), flush=True)


def _too_big() -> str:
    return (
        f"its ORC footer needs more than {ORC_FOOTER_MEMORY >> 20} MiB to read (statistics of "
        "oversized strings): refused before decompressing its data"
    )


if __name__ == "__main__":
    _child(json.load(sys.stdin))
