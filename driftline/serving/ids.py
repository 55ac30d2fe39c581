"""Request ids the server issues, and can later recognise as its own without remembering them.

An id is 8 random bytes, the issue time (seconds), the number of records answered, and an HMAC of
those with the server's key, in hex. `/feedback` checks the HMAC, the age and the record index: a
label can only name a row this server (or a replica holding the same key) answered recently, and
no replica needs a shared store to know it. The id is random, so it is also the canary draw."""

from __future__ import annotations

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
    use), so a restarted server, and replicas sharing the directory, accept each other's ids."""
    if configured:
        return configured.encode("utf-8", "surrogateescape")
    path = state_dir / "request-id.key"
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as f:
        key = secrets.token_hex(32)
        f.write(key + "\n")
    return key.encode()


def _read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} is readable by others (mode {stat.filemode(mode)}); "
                              "chmod 600 it: whoever reads it can forge request ids")
    key = path.read_text().strip()
    if len(key) < 32:  # another replica is writing it this very moment
        time.sleep(0.5)
        key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable key; delete it to make a new one")
    return key.encode()
