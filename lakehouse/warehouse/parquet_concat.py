"""Join Parquet files of one schema into one file without decoding or encoding a page.

Re-encoding an hour costs more than reading it (pyarrow's writer is single-threaded), and most
of an ODS hour is raw files that are already Parquet in the ODS schema. Parquet makes them
joinable as they are: a file is ``PAR1``, its column chunks, a Thrift footer that says where
each row group's chunks start, the footer's length and ``PAR1``. Joining copies every part's
chunks byte for byte and writes one footer listing all row groups, their offsets moved by where
the part landed; parquet-java's ``ParquetFileWriter.appendFile`` (``parquet-cli merge``) does
the same. pyarrow only writes footers it encoded itself, so the footer is rebuilt with
fastparquet's Thrift model of the format.

Only what can be joined safely is: the same Parquet schema in every part, footers written by
Arrow's C++ writer (so readers apply one writer's conventions, e.g. for statistics), no
encryption. Anything else is refused with the reason; callers convert such files instead.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from fastparquet.cencoding import ThriftObject

MAGIC = b"PAR1"
# Writers whose files join (their statistics and encodings follow one set of conventions).
JOINABLE_WRITER = "parquet-cpp-arrow"
_COPY_BYTES = 16 << 20


class ConcatRefused(ValueError):
    """Parts that cannot be joined without decoding them."""


@dataclass(frozen=True)
class Layout:
    """What joined files must share: the Parquet schema and the Arrow types it stands for."""

    parquet: pq.ParquetSchema
    arrow: pa.Schema

    @classmethod
    def of(cls, path: str | pa.NativeFile) -> Layout:
        return cls(pq.read_metadata(path).schema, pq.read_schema(path))

    @classmethod
    def written_for(cls, schema: pa.Schema) -> Layout:
        """The layout Arrow's writer gives a file of ``schema``."""
        sink = pa.BufferOutputStream()
        pq.write_table(schema.empty_table(), sink)
        return cls.of(pa.BufferReader(sink.getvalue()))


def joinable(path: str, like: Layout) -> str | None:
    """Why the Parquet file at ``path`` cannot join files of layout ``like``, or None."""
    metadata = pq.read_metadata(path)
    if not metadata.schema.equals(like.parquet):
        return "its Parquet schema differs from the table's"
    if not pq.read_schema(path).equals(like.arrow):
        return "its Arrow types differ from the table's (e.g. dictionary columns)"
    if not (metadata.created_by or "").startswith(JOINABLE_WRITER):
        return f"written by {metadata.created_by or 'an unnamed writer'}, not {JOINABLE_WRITER}"
    footer, data_end = _footer(path)
    if footer.encryption_algorithm is not None or any(
        chunk.crypto_metadata is not None for group in footer.row_groups for chunk in group.columns
    ):
        return "it is encrypted"
    if not all(
        len(MAGIC) <= start and start + length <= data_end
        for group in footer.row_groups
        for chunk in group.columns
        for start, length in _byte_ranges(chunk)
    ):
        # Only the bytes between the magic and the footer are copied: anything a chunk points
        # at elsewhere (a crafted file) would be read differently once joined.
        return "a column chunk points outside the file's data"
    return None


def _byte_ranges(chunk: ThriftObject) -> list[tuple[int, int]]:
    """(offset, length) of every part of a column chunk that its footer points at."""
    meta = chunk.meta_data
    if not meta.num_values:  # an empty chunk (Arrow writes data_page_offset 0): nothing is read
        return []
    first = meta.data_page_offset
    if meta.dictionary_page_offset is not None:
        first = min(first, meta.dictionary_page_offset)
    # The chunk's bytes as a whole, and where each reader may start: at its first page.
    ranges = [(first, meta.total_compressed_size), (meta.data_page_offset, 1)]
    if meta.dictionary_page_offset is not None:
        ranges.append((meta.dictionary_page_offset, 1))
    if chunk.offset_index_offset is not None:
        ranges.append((chunk.offset_index_offset, chunk.offset_index_length or 0))
    if chunk.column_index_offset is not None:
        ranges.append((chunk.column_index_offset, chunk.column_index_length or 0))
    if getattr(meta, "bloom_filter_offset", None) is not None:
        ranges.append((meta.bloom_filter_offset, getattr(meta, "bloom_filter_length", None) or 0))
    return ranges


def concat_parquet(parts: Sequence[str], out: str) -> int:
    """Write the rows of ``parts``, in order, to ``out`` as one Parquet file; returns its rows.

    Raises :class:`ConcatRefused` if a part cannot be joined to the first.
    """
    if not parts:
        raise ConcatRefused("nothing to join")
    like = Layout.of(parts[0])
    for part in parts:
        if reason := joinable(part, like):
            raise ConcatRefused(f"{os.path.basename(part)}: {reason}")
    if len(parts) == 1:
        shutil.copyfile(parts[0], out)
        return pq.read_metadata(out).num_rows
    joined: ThriftObject | None = None
    with open(out, "wb", buffering=0) as sink:
        _write_all(sink, MAGIC)
        for part in parts:
            footer, data_end = _footer(part)
            shift = sink.tell() - len(MAGIC)
            _copy_range(part, len(MAGIC), data_end, sink)
            for group in footer.row_groups:
                _move_row_group(group, shift)
            if joined is None:
                joined = footer
            else:
                joined.row_groups = joined.row_groups + footer.row_groups
                joined.num_rows += footer.num_rows
        assert joined is not None
        for ordinal, group in enumerate(joined.row_groups):
            if group.ordinal is not None:
                group.ordinal = ordinal
        encoded = bytes(joined.to_bytes())
        _write_all(sink, encoded + struct.pack("<i", len(encoded)) + MAGIC)
    return joined.num_rows


def _footer(path: str) -> tuple[ThriftObject, int]:
    """The file's footer (Thrift) and where its data ends (where the footer starts)."""
    with open(path, "rb") as source:
        size = source.seek(0, os.SEEK_END)
        source.seek(size - 8)
        tail = source.read(8)
        if len(tail) < 8 or tail[4:] != MAGIC:
            raise ConcatRefused(f"{os.path.basename(path)}: not a plain Parquet file")
        length = struct.unpack("<i", tail[:4])[0]
        start = size - 8 - length
        if length <= 0 or start < len(MAGIC):
            raise ConcatRefused(f"{os.path.basename(path)}: footer length out of range")
        source.seek(start)
        return _thrift_footer(source.read(length)), start


def _thrift_footer(encoded: bytes) -> ThriftObject:
    """Parse a footer with fastparquet (imported here: only joining needs it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its import probes a deprecated pandas option
        from fastparquet.cencoding import from_buffer
    return from_buffer(encoded, "FileMetaData")


def _copy_range(path: str, start: int, end: int, sink: io.FileIO) -> None:
    """Bytes ``[start, end)`` of ``path`` appended to ``sink``: in the kernel where it can
    (``copy_file_range``, no pass through Python's buffers), else read and written."""
    with open(path, "rb", buffering=0) as source:
        position, remaining = start, end - start
        while remaining:
            try:
                copied = os.copy_file_range(source.fileno(), sink.fileno(), remaining, position)
            except (AttributeError, OSError):  # not Linux, or not between these two files
                data = os.pread(source.fileno(), min(remaining, _COPY_BYTES), position)
                copied = _write_all(sink, data)
            if not copied:
                raise ConcatRefused(f"{os.path.basename(path)}: shorter than its footer says")
            position += copied
            remaining -= copied


def _write_all(sink: io.FileIO, data: bytes) -> int:
    """All of ``data`` (an unbuffered write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[sink.write(view) :]
    return len(data)


def _move_row_group(group: ThriftObject, shift: int) -> None:
    """Every offset of the row group, moved by ``shift`` bytes."""
    if group.file_offset is not None:
        group.file_offset += shift
    for chunk in group.columns:
        chunk.file_offset += shift
        for name in ("offset_index_offset", "column_index_offset"):
            if getattr(chunk, name) is not None:
                setattr(chunk, name, getattr(chunk, name) + shift)
        meta = chunk.meta_data
        meta.data_page_offset += shift
        for name in ("dictionary_page_offset", "index_page_offset", "bloom_filter_offset"):
            if getattr(meta, name, None) is not None:
                setattr(meta, name, getattr(meta, name) + shift)
