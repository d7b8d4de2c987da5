"""Judge a raw file by its footer alone, within a memory bound, before any data is decoded.

The footer says whether a file fits ODS (columns and types) and how many bytes each string
column declares; a column declaring more than its values can hold within the intake length
limits is a decompression bomb and is refused before it is decompressed.

Parquet footers are small and hold sizes, so they are read in process. ORC footers hold full
min and max strings and are only parsed whole: a memory-capped child parses them first
(:mod:`lakehouse.defs.ods.orc_statistics`), and their schema is read here only once the child
has found them safe to parse.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq

from lakehouse.defs.ods.bounds import FileFault, batch_rows, check_declared_size, one_line
from lakehouse.defs.ods.orc_statistics import bounded_in_child
from lakehouse.rules import STRING_LIMITS
from lakehouse.tables import ODS_SCHEMA

__all__ = ["FileFault", "FooterCheck", "check_footer", "check_footers", "one_line"]

# A column chunk read as a dictionary: a dictionary page, and no more than this per value beyond
# the page (dictionary indices take 1-4 bytes; a chunk that fell back to plain values, which
# Arrow would have to hash into a dictionary again, takes more).
DICTIONARY_BYTES_PER_VALUE, DICTIONARY_PAGE_BYTES = 4, 1 << 20


@dataclass(frozen=True)
class FooterCheck:
    """What a file's footer promises: rows, and the batch size that keeps decoding bounded.

    ``dictionary_columns``: string columns the file stores dictionary-encoded throughout, which
    are read as dictionaries (their distinct values decoded and judged once, not every row's).
    ``whole_stripes``: an ORC file whose every stripe is small enough to decode at once (the
    fast path); otherwise its stripes are streamed in batches of ``batch_rows``.
    """

    rows: int
    batch_rows: int
    dictionary_columns: tuple[str, ...] = ()
    whole_stripes: bool = False


def schema_problems(schema: pa.Schema) -> list[str]:
    """Ways a file's schema does not fit ODS; extra columns are fine and ignored."""
    problems = []
    for expected in ODS_SCHEMA:
        index = schema.get_field_index(expected.name)
        if index < 0:
            problems.append(f"missing column {expected.name!r}")
            continue
        actual = schema.field(index).type
        if not _castable(actual, expected.type):
            problems.append(f"column {expected.name!r} is {actual}, expected {expected.type}")
    return problems


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_dictionary(actual):  # e.g. pandas categories: the values are what count
        actual = actual.value_type
    if pa.types.is_null(actual):
        return True
    if pa.types.is_string(expected):
        return (
            pa.types.is_string(actual)
            or pa.types.is_large_string(actual)
            or pa.types.is_string_view(actual)
        )
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual)
    return actual == expected


def check_footers(sources: Mapping[str, str | bytes], formats: Mapping[str, str]) -> dict:
    """Verdict per name: a :class:`FooterCheck` or a :class:`FileFault`.

    ``sources`` maps a name to a local path or to the file's last bytes; Parquet is judged in
    process, all ORC files together in one memory-capped child.
    """
    verdicts: dict[str, FooterCheck | FileFault] = {}
    orc_sources = {}
    for name, source in sources.items():
        if formats[name] == "parquet":
            verdicts[name] = _guarded("parquet", lambda s=source: _check_parquet(s))
        else:
            orc_sources[name] = source
    if orc_sources:
        verdicts.update(_check_orc_isolated(orc_sources))
    return verdicts


def check_footer(source: str | bytes, fmt: str) -> FooterCheck:
    """Judge one file; raise :class:`FileFault` with the reason if it is unusable."""
    verdict = check_footers({"file": source}, {"file": fmt})["file"]
    if isinstance(verdict, FileFault):
        raise verdict
    return verdict


def _guarded(fmt: str, check) -> FooterCheck | FileFault:
    try:
        return check()
    except FileFault as fault:
        return fault
    except Exception as exc:  # any parse failure of local bytes is the file's own
        return FileFault(f"unreadable {fmt} footer: {one_line(exc)}")


def _readable(source: str | bytes) -> str | pa.BufferReader:
    return pa.BufferReader(source) if isinstance(source, bytes) else source


def _check_parquet(source: str | bytes) -> FooterCheck:
    meta = pq.read_metadata(_readable(source))
    schema = meta.schema.to_arrow_schema()
    _raise_schema_problems(schema)
    widest_row = 1.0
    dictionary = {name for name in STRING_LIMITS if name in schema.names}
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        group_bytes = 0
        for chunk_index in range(row_group.num_columns):
            chunk = row_group.column(chunk_index)
            column = chunk.path_in_schema
            if column not in ODS_SCHEMA.names:
                continue
            group_bytes += chunk.total_uncompressed_size
            if column in STRING_LIMITS:
                check_declared_size(
                    column, chunk.total_uncompressed_size, chunk.num_values, STRING_LIMITS[column]
                )
                if not _dictionary_encoded(chunk):
                    dictionary.discard(column)
        if row_group.num_rows:
            widest_row = max(widest_row, group_bytes / row_group.num_rows)
    columns = tuple(name for name in ODS_SCHEMA.names if name in dictionary)
    return FooterCheck(meta.num_rows, batch_rows(widest_row), columns)


def _dictionary_encoded(chunk: pq.ColumnChunkMetaData) -> bool:
    """Whether a column chunk is stored as a dictionary page and indices into it."""
    allowed = chunk.num_values * DICTIONARY_BYTES_PER_VALUE + DICTIONARY_PAGE_BYTES
    return chunk.has_dictionary_page and chunk.total_uncompressed_size <= allowed


def _raise_schema_problems(schema: pa.Schema) -> None:
    problems = schema_problems(schema)
    if problems:
        raise FileFault("schema mismatch: " + "; ".join(problems))


def _check_orc_isolated(sources: Mapping[str, str | bytes]) -> dict[str, FooterCheck | FileFault]:
    """Bound every ORC source's strings in capped children, then check the safe ones' schema."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-orc-") as folder:
        paths = {}
        for index, (name, source) in enumerate(sources.items()):
            if isinstance(source, bytes):
                path = os.path.join(folder, f"{index}.orc")
                with open(path, "wb") as out:
                    out.write(source)
                paths[name] = path
            else:
                paths[name] = source
        answers = bounded_in_child(
            [(path, not isinstance(sources[name], bytes)) for name, path in paths.items()]
        )
        verdicts: dict[str, FooterCheck | FileFault] = {}
        for (name, path), answer in zip(paths.items(), answers, strict=True):
            if "fault" in answer:
                verdicts[name] = FileFault(answer["fault"])
            else:
                verdicts[name] = _guarded("orc", lambda p=path, a=answer: _orc_schema(p, a))
    return verdicts


def _orc_schema(path: str, bounds: dict) -> FooterCheck:
    """The schema check of an ORC file whose footer the child parsed within its memory cap."""
    _raise_schema_problems(orc.ORCFile(path).schema)
    return FooterCheck(bounds["rows"], bounds["batch_rows"], whole_stripes=bounds["whole_stripes"])
