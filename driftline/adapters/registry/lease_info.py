"""What a lease says about its holder (`LeaseInfo`: who, for what, on which host, since and
until when) and the two errors that carry it to a caller: `LeaseHeld` (someone else holds it) and
`LeaseLost` (we held it and no longer do). Apart from `lease` (taking, holding and releasing a
lease in the registry): a caller that only reports a holder needs none of that, and `lease` stays
under 300 lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


class LeaseHeld(RuntimeError):
    """Someone else holds the lease; the message names them and until when."""

    def __init__(self, message: str, holder: LeaseInfo | None):
        super().__init__(message)
        self.holder = holder


class LeaseLost(RuntimeError):
    """We held the lease and no longer do (expired and taken over, or deleted)."""


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    owner: str
    token: str
    purpose: str
    host: str
    acquired_at: float  # seconds since the epoch
    expires_at: float
    ttl_seconds: float
    read_at: float  # when this was read: `expired` is as of then

    @property
    def expired(self) -> bool:
        return self.read_at >= self.expires_at

    def describe(self) -> str:
        return (f"held by {self.owner} ({self.purpose}, on {self.host}) since {iso(self.acquired_at)} "
                f"until {iso(self.expires_at)}" + (" (expired)" if self.expired else ""))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")

