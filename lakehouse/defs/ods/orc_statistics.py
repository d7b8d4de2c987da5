"""ORC files' string sizes, bounded from their statistics in a memory-capped child.

ORC footers hold every column's full min and max strings (a 100 MiB VIN is 100 MiB of footer
once decompressed) and are only parsed whole, so they are parsed first in a short-lived child
process with a capped data segment: a hostile footer makes the child's answer for that file a
fault, not the run's memory. The child loads only pyorc and :mod:`bounds` (no pyarrow, whose
import alone took ~0.1 s of the child's ~0.13 s); the parent reads the schema with pyarrow once
the child has found the footer safe to parse.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Sequence

from lakehouse.defs.ods.bounds import FileFault, batch_rows, check_declared_size, one_line
from lakehouse.rules import STRING_LIMITS

# Memory an ORC footer may take to parse; legitimate footers need a few MB at most.
ORC_FOOTER_MEMORY = 512 << 20
ORC_CHECK_TIMEOUT_S = 120


def bounded_in_child(files: Sequence[tuple[str, bool]]) -> list[dict]:
    """Per file, ``{"rows", "batch_rows"}`` or ``{"fault"}``, answered by one capped child.

    ``files``: a path, and whether it holds the whole file (else only its tail, as discovery
    reads it). Raises ``subprocess.TimeoutExpired`` if the child takes too long, and
    ``RuntimeError`` if it fails as a whole (which no single file can make it do).
    """
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(list(files)),
        capture_output=True,
        text=True,
        timeout=ORC_CHECK_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the ORC footer checker failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def string_bounds(path: str, whole: bool) -> dict:
    """Rows and batch size of one ORC file, from its statistics; raises :class:`FileFault`.

    The file's statistics (in its footer) bound the whole file; a whole file is also bounded
    stripe by stripe, as it is decoded. pyorc reads a stripe's statistics from the stripe's row
    index, which is data, not tail, so a tail alone is bounded only as a whole.
    """
    import pyorc  # ORC string statistics (declared sizes); pyarrow does not expose them

    with open(path, "rb") as handle:
        reader = pyorc.Reader(handle)
        names = getattr(reader.schema, "fields", {})  # not a struct: pyarrow's check says so
        columns = {
            name: reader.schema.find_column_id(name) for name in STRING_LIMITS if name in names
        }
        widest_row = _widest_row(reader, columns)  # the file as a whole
        for stripe_index in range(reader.num_of_stripes if whole else 0):
            widest_row = max(widest_row, _widest_row(reader.read_stripe(stripe_index), columns))
        return {"rows": len(reader), "batch_rows": batch_rows(widest_row)}


def _widest_row(part, columns: dict[str, int]) -> float:
    """Bytes per row the part's string columns declare; raises if one declares too many.

    ``part``: a pyorc reader or stripe, whose ``[column_id].statistics`` cover it.
    """
    rows = string_bytes = 0
    for name, column_id in columns.items():
        try:
            stats = part[column_id].statistics
        except UnicodeDecodeError:
            # The column's min or max is not UTF-8, so its declared size cannot be read, and
            # what cannot be bounded is never decoded.
            raise FileFault(
                f"ORC statistics of column {name!r} are not valid UTF-8: its size "
                "cannot be bounded before decoding"
            ) from None
        values, declared = stats.get("number_of_values", 0), stats.get("total_length", 0)
        rows = max(rows, values)
        string_bytes += declared
        check_declared_size(name, declared, values, STRING_LIMITS[name])
    return string_bytes / rows + 8 * 3 if rows else 1.0


def _child(files: Sequence[tuple[str, bool]]) -> list[dict]:
    """In the child: judge each ORC footer under the memory cap; never crash on one file."""
    resource.setrlimit(resource.RLIMIT_DATA, (ORC_FOOTER_MEMORY, ORC_FOOTER_MEMORY))
    answers = []
    for path, whole in files:
        try:
            answers.append(string_bounds(path, whole))
        except FileFault as fault:
            answers.append({"fault": fault.reason})
        except MemoryError:
            answers.append({"fault": _too_big()})
        except Exception as exc:
            text = one_line(exc)
            memory = "memory" in text.lower() or "bad_alloc" in text
            answers.append({"fault": _too_big() if memory else f"unreadable orc footer: {text}"})
    return answers


def _too_big() -> str:
    return (
        f"its ORC footer needs more than {ORC_FOOTER_MEMORY >> 20} MiB to read (statistics of "
        "oversized strings): refused before decompressing its data"
    )


if __name__ == "__main__":
    print(json.dumps(_child(json.load(sys.stdin))))
