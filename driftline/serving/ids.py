"""Request ids the server issues, and can later recognise as its own without remembering them.

An id is 8 random bytes, the issue time (seconds), the number of records answered, and an HMAC of
those with the server's key, in hex. `/feedback` checks the HMAC, the age and the record index: a
label can only name a row this server (or a replica holding the same key) answered recently, and
no replica needs a shared store to know it. The id is random; keyed by the same key it is also
the canary draw (`share`)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import struct
import time
from dataclasses import dataclass
from pathlib import Path

_BODY = struct.Struct(">8sII")  # random, issued at (unix seconds), records
_MAC_BYTES = 12  # 96 bits: guessing one valid id takes ~2**95 tries
_LENGTH = 2 * (_BODY.size + _MAC_BYTES)
_CLOCK_SKEW = 300  # seconds: replicas' clocks may differ a little


@dataclass(frozen=True)
class Issued:
    at: int  # unix seconds
    records: int


class RequestIds:
    def __init__(self, key: bytes, max_age_seconds: float):
        self._key = key
        self.max_age = max_age_seconds

    def issue(self, records: int, at: float | None = None) -> str:
        """A new id for a request of `records` records, issued now (or `at`, unix seconds)."""
        body = _BODY.pack(os.urandom(8), int(time.time() if at is None else at), records)
        return (body + hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]).hex()

    def share(self, draw: str) -> float:
        """A request's place in [0, 1) for the canary split: an HMAC of its id (or the caller's own
        id) with the server's key. Replicas holding the same key agree on the split; a client,
        which does not hold it, cannot tell which arm an id falls in (an unkeyed hash let it)."""
        mac = hmac.new(self._key, b"canary:" + draw.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return int.from_bytes(mac[:8], "big") / 2**64

    def client_key(self, identity: bytes) -> str | None:
        """Who asked, for the prediction log: an HMAC of the caller's identity (the token it presented,
        or its peer address) with the server's key. One client's share of a window can be counted and
        replicas holding the same key agree, but the log keeps no address. None when nothing is known."""
        if not identity:
            return None
        return hmac.new(self._key, b"client:" + identity, hashlib.sha256).hexdigest()[:16]

    def verify(self, request_id: str) -> Issued | None:
        """What the id says, if this key made it and it is recent; else None."""
        if len(request_id) != _LENGTH:
            return None
        try:
            raw = bytes.fromhex(request_id)
        except ValueError:
            return None
        body, mac = raw[:_BODY.size], raw[_BODY.size:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
            return None
        _, at, records = _BODY.unpack(body)
        age = time.time() - at
        if age > self.max_age or age < -_CLOCK_SKEW:
            return None
        return Issued(at, records)


def server_key(configured: str | None, state_dir: Path) -> bytes:
    """DRIFTLINE_SERVE_REQUEST_ID_KEY, else a random key kept in `state_dir` (created 0600 on first
    use), so a restarted server, and replicas sharing the directory, accept each other's ids.

    The file appears whole or not at all (written aside, then linked into place): a disk that
    filled up while it was written used to leave an empty key file that stopped every later start."""
    if configured:
        return configured.encode("utf-8", "surrogateescape")
    path = state_dir / "request-id.key"
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size < 32:
        # Only an earlier release's interrupted write leaves this: nobody can be writing it now.
        with contextlib.suppress(FileNotFoundError):  # another replica moved it first
            os.replace(path, path.with_name(f"request-id.key.broken-{os.getpid()}"))
    if not path.exists():
        key = secrets.token_hex(32)
        aside = path.with_name(f".request-id.key.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(aside, path)  # fails if a replica linked its key first: then that one is read
            return key.encode()
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                aside.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} is readable by others (mode {stat.filemode(mode)}); "
                              "chmod 600 it: whoever reads it can forge request ids")
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable key; delete it to make a new one")
    return key.encode()
