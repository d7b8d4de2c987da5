"""A zone is a root folder on a local disk or an S3-protocol bucket, with one interface for both.

Object operations (list, stat, read, fetch, upload, move, delete) go through the store's own API
so they can be retried precisely and never leave side effects: on S3 that is boto3 (pyarrow's
S3 filesystem writes zero-byte "folder" markers when it moves or deletes an object; boto3 does
not). Columnar scans of published partitions keep using pyarrow's filesystem (``filesystem``),
which DuckDB reads through.

Every operation that touches the network is retried on transient faults and raises
:class:`~lakehouse.resources.faults.TransientStorageError` if they persist; a listed object that
vanished or changed before it was read raises :class:`~lakehouse.resources.faults.ObjectChanged`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow.fs as pafs

from lakehouse.resources.faults import (
    CONFIG_CODES,
    OPERATION_ATTEMPTS,
    VANISHED_CODES,
    ObjectChanged,
    StorageConfigError,
    call_with_retries,
    describe,
    s3_error_code,
)
from lakehouse.resources.superseded import replace_deferring_release

DOWNLOAD_CHUNK = 8 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """An object below a zone root: its key (relative, '/'-separated), size and version.

    ``version`` is the S3 ETag or the local modification time in nanoseconds: together with the
    size it identifies the exact bytes that were listed, so a later read can insist on them.
    """

    key: str
    size: int
    version: str
    path: str  # the filesystem path (zone.path(key)), for pyarrow and for display


class Zone(ABC):
    """A root folder: a local directory or a bucket prefix."""

    url: str
    root: str

    @property
    @abstractmethod
    def is_local(self) -> bool: ...

    @property
    @abstractmethod
    def filesystem(self) -> pafs.FileSystem:
        """pyarrow's view of the zone, for datasets and DuckDB scans."""

    def path(self, *parts: str) -> str:
        """Filesystem path of ``parts`` below the zone root."""
        return posixpath.join(self.root, *parts) if parts else self.root

    def key_of(self, path: str) -> str:
        """The key of a path below the root, as is (never normalised: keys may hold '..')."""
        prefix = self.root.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
        return posixpath.relpath(path, self.root)

    def display(self, path: str) -> str:
        """User-facing URL for a filesystem path of this zone."""
        return self.url.rstrip("/") + "/" + self.key_of(path)

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def list_files(self, prefix: str, recursive: bool = False) -> list[ObjectInfo]:
        """Objects below the folder ``prefix``, sorted by key; an absent folder lists as empty."""
        return self.list_objects(prefix, recursive=recursive)

    @abstractmethod
    def list_objects(self, prefix: str, recursive: bool = True) -> list[ObjectInfo]: ...

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def has_any(self, prefix: str) -> bool:
        """Whether the folder ``prefix`` exists (locally) or holds any object (on S3)."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def read_tail(self, info: ObjectInfo, nbytes: int) -> bytes:
        """The last ``nbytes`` of exactly the listed version of an object (footers)."""

    @abstractmethod
    def fetch_local(self, info: ObjectInfo) -> contextlib.AbstractContextManager[str]:
        """A local file holding exactly the listed version of ``info``, for parsing.

        Exceptions raised inside the block are the file's own, unless the object changed
        meanwhile, in which case :class:`ObjectChanged` is raised instead.
        """

    @abstractmethod
    def write_bytes(self, key: str, payload: bytes) -> None:
        """Write a small object whole (readers see the old or the new bytes)."""

    @abstractmethod
    def put_file(self, local_path: str, key: str) -> None:
        """Upload (or move in) a finished local file as ``key``."""

    @abstractmethod
    def move(self, source_key: str, target_key: str) -> None:
        """Replace ``target_key`` with ``source_key`` in one visible step; the source goes."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; an absent one is fine."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object below the folder ``prefix``; returns how many."""
        objects = self.list_objects(prefix)
        for info in objects:
            self.delete(info.key)
        return len(objects)


class LocalZone(Zone):
    """A folder on this machine (the embedded default)."""

    def __init__(self, root: str, url: str):
        self.root, self.url = root, url

    @property
    def is_local(self) -> bool:
        return True

    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        return pafs.LocalFileSystem()

    def _info(self, key: str, stat: os.stat_result) -> ObjectInfo:
        return ObjectInfo(key, stat.st_size, str(stat.st_mtime_ns), self.path(key))

    def list_objects(self, prefix: str, recursive: bool = True) -> list[ObjectInfo]:
        base = self.path(prefix)
        found = []
        if recursive:
            for folder, dirs, files in os.walk(base):
                dirs.sort()
                for name in files:
                    full = os.path.join(folder, name)
                    found.append(self._info(self.key_of(full), os.stat(full)))
        else:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for entry in os.scandir(base):
                    if entry.is_file(follow_symlinks=False):
                        found.append(self._info(self.key_of(entry.path), entry.stat()))
        return sorted(found, key=lambda i: i.key)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            stat = os.stat(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self._info(key, stat) if os.path.isfile(self.path(key)) else None

    def has_any(self, prefix: str) -> bool:
        return os.path.isdir(self.path(prefix))

    def read_bytes(self, key: str) -> bytes:
        with open(self.path(key), "rb") as handle:
            return handle.read()

    def read_tail(self, info: ObjectInfo, nbytes: int) -> bytes:
        with self.fetch_local(info) as local, open(local, "rb") as handle:
            handle.seek(max(0, info.size - nbytes))
            return handle.read()

    @contextlib.contextmanager
    def fetch_local(self, info: ObjectInfo) -> Iterator[str]:
        self._require_unchanged(info)
        try:
            yield info.path
        except Exception as exc:
            self._require_unchanged(info, cause=exc)
            raise
        self._require_unchanged(info)

    def _require_unchanged(self, info: ObjectInfo, cause: BaseException | None = None) -> None:
        now = self.stat(info.key)
        if now is None or (now.size, now.version) != (info.size, info.version):
            what = "vanished" if now is None else "changed"
            raise ObjectChanged(f"{self.display(info.path)} {what} while it was read") from cause

    def write_bytes(self, key: str, payload: bytes) -> None:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, staging = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            os.replace(staging, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(staging)
            raise

    def put_file(self, local_path: str, key: str) -> None:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            replace_deferring_release(local_path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.move(local_path, target)  # staged on another filesystem: copied, not renamed

    def move(self, source_key: str, target_key: str) -> None:
        target = self.path(target_key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(self.path(source_key), target)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path(key))


class S3Zone(Zone):
    """A bucket prefix on S3, MinIO, OSS or any S3-protocol store."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client_factory: Any,
        filesystem_factory: Any,
        attempts: int = OPERATION_ATTEMPTS,
    ):
        self.bucket, self.prefix = bucket, prefix
        self.root = posixpath.join(bucket, prefix) if prefix else bucket
        self.url = f"s3://{self.root}"
        self._client_factory, self._filesystem_factory = client_factory, filesystem_factory
        self.attempts = attempts  # whole-operation attempts (each up to botocore's own)

    @property
    def is_local(self) -> bool:
        return False

    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        return self._filesystem_factory()

    @cached_property
    def client(self) -> Any:
        """boto3 S3 client (created on first use: boto3 costs ~0.5 s to import)."""
        return self._client_factory()

    def object_key(self, key: str) -> str:
        return posixpath.join(self.prefix, key) if self.prefix else key

    def _retry(self, what: str, fn: Any) -> Any:
        return call_with_retries(f"{what} {self.url}", fn, self.attempts)

    def _config_or_raise(self, exc: BaseException, what: str) -> None:
        code, _ = s3_error_code(exc)
        if code in CONFIG_CODES:
            raise StorageConfigError(f"{what} {self.url}: {describe(exc)}") from None

    def list_objects(self, prefix: str, recursive: bool = True) -> list[ObjectInfo]:
        base = self.object_key(prefix).rstrip("/") + "/" if prefix else self.object_key("")
        base = "" if base == "/" else base

        def run() -> list[ObjectInfo]:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
            if not recursive:
                params["Delimiter"] = "/"
            found = []
            for page in self.client.get_paginator("list_objects_v2").paginate(**params):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) + 1 :] if self.prefix else item["Key"]
                    if key.endswith("/"):
                        continue  # a folder marker another tool created
                    etag = str(item.get("ETag", "")).strip('"')
                    found.append(ObjectInfo(key, int(item["Size"]), etag, self.path(key)))
            return found

        try:
            return sorted(self._retry("listing", run), key=lambda i: i.key)
        except Exception as exc:
            self._config_or_raise(exc, "cannot list")
            raise

    def stat(self, key: str) -> ObjectInfo | None:
        def run() -> ObjectInfo | None:
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            except Exception as exc:
                code, status = s3_error_code(exc)
                if code in {"404", "NoSuchKey", "NotFound"} or status == 404:
                    return None
                raise
            etag = str(head.get("ETag", "")).strip('"')
            return ObjectInfo(key, int(head["ContentLength"]), etag, self.path(key))

        try:
            return self._retry("cannot stat", run)
        except Exception as exc:
            self._config_or_raise(exc, "cannot stat")
            raise

    def has_any(self, prefix: str) -> bool:
        def run() -> bool:
            page = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self.object_key(prefix), MaxKeys=1
            )
            return bool(page.get("KeyCount", 0))

        try:
            return self._retry("cannot list", run)
        except Exception as exc:
            self._config_or_raise(exc, "cannot list")
            raise

    def _get(self, info: ObjectInfo | None, key: str, **extra: Any) -> Any:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key), **extra}
        if info is not None and info.version:
            params["IfMatch"] = f'"{info.version}"'
        try:
            return self.client.get_object(**params)
        except Exception as exc:
            code, status = s3_error_code(exc)
            if info is None and (code in {"NoSuchKey", "404"} or status == 404):
                raise FileNotFoundError(self.display(self.path(key))) from None
            if code in VANISHED_CODES or status in {404, 412}:
                raise ObjectChanged(
                    f"{self.display(self.path(key))} vanished or changed since it was listed"
                ) from exc
            self._config_or_raise(exc, "cannot read")
            raise

    def read_bytes(self, key: str) -> bytes:
        return self._retry("cannot read", lambda: self._get(None, key)["Body"].read())

    def read_tail(self, info: ObjectInfo, nbytes: int) -> bytes:
        span = f"bytes=-{min(nbytes, info.size)}"
        return self._retry(
            "cannot read the footer of",
            lambda: self._get(info, info.key, Range=span)["Body"].read(),
        )

    @contextlib.contextmanager
    def fetch_local(self, info: ObjectInfo) -> Iterator[str]:
        folder = tempfile.mkdtemp(prefix="lakehouse-fetch-")
        local = os.path.join(folder, posixpath.basename(info.key) or "object")

        def download() -> None:
            body = self._get(info, info.key)["Body"]
            with open(local, "wb") as out:
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK):
                    out.write(chunk)
            if os.path.getsize(local) != info.size:
                raise ObjectChanged(f"{self.display(info.path)} changed size while downloading")

        try:
            self._retry(f"cannot download {posixpath.basename(info.key)} from", download)
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def write_bytes(self, key: str, payload: bytes) -> None:
        self._retry(
            "cannot write",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self.object_key(key), Body=payload
            ),
        )

    def put_file(self, local_path: str, key: str) -> None:
        # s3transfer splits large files into a multipart upload and aborts it if a part fails.
        self._retry(
            "cannot upload to",
            lambda: self.client.upload_file(local_path, self.bucket, self.object_key(key)),
        )

    def move(self, source_key: str, target_key: str) -> None:
        source = {"Bucket": self.bucket, "Key": self.object_key(source_key)}
        self._retry(
            "cannot publish to",
            lambda: self.client.copy(source, self.bucket, self.object_key(target_key)),
        )
        self.delete(source_key)

    def delete(self, key: str) -> None:
        self._retry(
            "cannot delete from",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key)),
        )

    def abort_stale_uploads(self, prefix: str, older_than_seconds: float) -> int:
        """Abort multipart uploads under ``prefix`` left behind by killed writers."""
        import datetime as _dt

        cutoff = _dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=older_than_seconds)

        def run() -> int:
            aborted = 0
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix)):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
            return aborted

        try:
            return self._retry("cannot clean up uploads in", run)
        except Exception as exc:
            self._config_or_raise(exc, "cannot clean up uploads in")
            raise
