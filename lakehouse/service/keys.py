"""API keys: created once, stored only as salted hashes, checked in constant time.

A key reads ``lhk_<id>_<secret>``: the id (public, 12 hex characters) finds the record, the
secret (``secrets.token_urlsafe(32)``, 256 random bits) is what proves possession. The file
keeps per key its name, role, id, a random salt and SHA-256(salt + secret), creation and expiry
times, revocation, and an optional rate limit of its own; never the key. A slow password hash
would add nothing against 256 random bits and would cost every request, so a salted SHA-256 it
is. The file is written whole and atomically (a private temporary file renamed over it, mode
0600) under a lock, so two ``lakehouse api-key`` commands never lose each other's changes, and
a running server sees the new content (it re-reads the file when its stat changes).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from filelock import FileLock

PREFIX = "lhk_"
FORMAT = 1
_ID_RE = re.compile(r"^[0-9a-f]{12}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The longest well-formed key; anything longer is refused before it is hashed.
MAX_KEY_CHARS = len(PREFIX) + 12 + 1 + 64


class KeyFileError(ValueError):
    """A key operation that cannot be done (unknown name, duplicate name, bad argument)."""


@dataclass(frozen=True)
class ApiKey:
    """One key's record, as the file keeps it (no secret)."""

    name: str
    role: str
    key_id: str
    salt: str
    digest: str
    created: str
    expires: str | None = None
    revoked: str | None = None
    rate_limit: float | None = None
    rate_burst: int | None = None

    def status(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked:
            return "revoked"
        if self.expires and datetime.fromisoformat(self.expires) <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Verdict:
    """What a presented key turned out to be: its record, or why it is refused."""

    key: ApiKey | None
    reason: str | None  # None when the key is valid


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise KeyFileError(
            "a key name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


class KeyStore:
    """The key file: read (and re-read when it changes) by the server, written by the CLI."""

    def __init__(self, path: Path):
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._by_id: dict[str, ApiKey] = {}

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> list[ApiKey]:
        """Every record in the file (none if there is no file yet)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"cannot read the API key file {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KeyFileError(f"{self.path} is not an API key file of format {FORMAT}")
        try:
            return [ApiKey(**record) for record in data.get("keys", [])]
        except TypeError:
            raise KeyFileError(f"{self.path} holds a key record this version cannot read") from None

    def _current(self) -> dict[str, ApiKey]:
        """Records by id, re-read only when the file's stat changed (cheap per request)."""
        try:
            stat = os.stat(self.path)
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        if signature != self._signature:
            self._by_id = {k.key_id: k for k in self.load()} if signature else {}
            self._signature = signature
        return self._by_id

    def verify(self, presented: str, now: datetime | None = None) -> Verdict:
        """Check a presented key; the secret is compared in constant time."""
        now = now or datetime.now(UTC)
        key_id, secret = _split(presented)
        record = self._current().get(key_id) if key_id else None
        # Hash and compare even for an unknown id, so timing does not tell ids apart.
        salt = record.salt if record else "00" * 16
        expected = record.digest if record else "0" * 64
        matches = hmac.compare_digest(_digest(salt, secret or ""), expected)
        if record is None or not matches:
            return Verdict(None, "unknown API key")
        status = record.status(now)
        if status == "revoked":
            return Verdict(record, f"API key {record.name!r} has been revoked")
        if status == "expired":
            return Verdict(record, f"API key {record.name!r} expired at {record.expires}")
        return Verdict(record, None)

    # -- writing (the CLI) ----------------------------------------------------------------------

    def create(
        self,
        role: str,
        name: str | None = None,
        expires_days: int | None = None,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
    ) -> tuple[ApiKey, str]:
        """Add a key for ``role``; returns its record and the key itself (shown once)."""
        if expires_days is not None and expires_days < 1:
            raise KeyFileError("--expires must be at least 1 day")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        now = datetime.now(UTC).replace(microsecond=0)
        record = ApiKey(
            name=check_name(name or f"{role}-{key_id[:6]}"),
            role=role,
            key_id=key_id,
            salt=salt,
            digest=_digest(salt, secret),
            created=now.isoformat(),
            expires=(now + timedelta(days=expires_days)).isoformat() if expires_days else None,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
        )
        with self._locked():
            keys = self.load()
            if any(k.name == record.name for k in keys):
                raise KeyFileError(f"a key named {record.name!r} exists already")
            self._write([*keys, record])
        return record, f"{PREFIX}{key_id}_{secret}"

    def revoke(self, name: str) -> ApiKey:
        """Mark the key revoked (kept in the file, for the record); refused at once."""
        with self._locked():
            keys = self.load()
            for i, key in enumerate(keys):
                if key.name == name:
                    if key.revoked:
                        return key
                    now = datetime.now(UTC).replace(microsecond=0).isoformat()
                    keys[i] = replace(key, revoked=now)
                    self._write(keys)
                    return keys[i]
        raise KeyFileError(f"no API key named {name!r}")

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path) + ".lock", mode=0o600)
        with lock:
            yield

    def _write(self, keys: list[ApiKey]) -> None:
        payload = json.dumps(
            {"format": FORMAT, "keys": [asdict(k) for k in keys]}, indent=1, sort_keys=True
        )
        fd, staging = tempfile.mkstemp(dir=self.path.parent, prefix=".api_keys-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(staging, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(staging)
            raise


def _split(presented: str) -> tuple[str | None, str | None]:
    """``(id, secret)`` of a well-formed key, else ``(None, None)``."""
    if len(presented) > MAX_KEY_CHARS or not presented.startswith(PREFIX):
        return None, None
    key_id, sep, secret = presented[len(PREFIX) :].partition("_")
    if not sep or not _ID_RE.match(key_id) or not secret:
        return None, None
    return key_id, secret
