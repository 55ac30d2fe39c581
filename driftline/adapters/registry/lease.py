"""Leases in the model registry: one holder at a time for a named piece of work on a model.

MLflow has no lock and no compare-and-set, but a registered model's name is unique in every
backend (a primary key in SQL, checked by `mlflow server` against the same table): creating
`<model>.lease.<name>` either succeeds for exactly one caller or fails with
RESOURCE_ALREADY_EXISTS. A lease is that registered model; its tags say who holds it (owner, a
token unique to this acquisition), since when and until when. Deleting it releases it.

A holder that dies without releasing leaves an expired lease. Taking it over is the racy part
(two contenders both see it expired; one deletes it and creates its own, the second then deletes
the new one): so a contender first creates `<lease>.takeover.<token>.<epoch>`, and only the one
that created it may delete the expired lease. The epoch counts ttl periods since expiry, so a
contender that died holding a takeover name blocks the takeover for one period, not forever.

Any other registry failure raises (RegistryUnreachable, after driftline's bounded retries for
idempotent calls): an unreachable registry is never a free lease. Clocks of the machines taking
a lease must agree to well within its ttl.

What a lease says about its holder (`LeaseInfo`) and the errors `LeaseHeld` and `LeaseLost` are
in `lease_info`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from driftline.adapters.registry.faults import unreachable
from driftline.adapters.registry.lease_info import LeaseHeld, LeaseInfo, LeaseLost, iso
from driftline.adapters.registry.tags import LEASE_TAG, stamp, when  # LEASE_TAG: its name ("rollout") or "takeover"

if TYPE_CHECKING:
    from driftline.adapters.registry.store import MlflowStore

ROLLOUT = "rollout"
# The longest a lease may be taken for, and outlive a holder that died: a rollout renews its own
# every third of it. A longer one (`--lease-ttl 1e9`) pinned the model's rollouts for ever once its
# holder was killed; lengths are capped when taken and when read.
MAX_TTL_SECONDS = 3600.0
# A create that failed for one of these lost a race (DOES_NOT_EXIST: MLflow re-reads the clashing
# model to word its error, and it was gone by then).
_RACE = ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")


def _call(store: MlflowStore, what: str, fn, *args, **kwargs):
    """An idempotent registry call with driftline's bounded retries; "absent" returns None."""
    from driftline.adapters.registry.faults import call

    return call(store.tracking_uri, what, fn, *args, absent=None, **kwargs)


def holder(store: MlflowStore, name: str) -> LeaseInfo | None:
    """Who holds the lease, or None when nobody does. Raises when the registry cannot say."""
    for attempt in range(5):
        model = _call(store, f"read the {name} lease", store.client.get_registered_model,
                      f"{store.model_name}.lease.{name}")
        if model is None:
            return None
        tags = dict(model.tags or {})
        try:
            # Times are ISO (epoch seconds in leases taken before): `when` reads both.
            acquired, expires = (when(tags[f"{LEASE_TAG}.{t}"]) for t in ("acquired_at", "expires_at"))
            if acquired is None or expires is None:
                raise ValueError("an unreadable time")
            now, ttl = time.time(), min(float(tags[f"{LEASE_TAG}.ttl_seconds"]), MAX_TTL_SECONDS)
            # A clock (or a holder) that wrote a time far ahead cannot pin the lease: an expiry counts
            # at most one capped length from now, an acquisition at most now.
            return LeaseInfo(name, tags[f"{LEASE_TAG}.owner"], tags[f"{LEASE_TAG}.token"],
                             tags.get(f"{LEASE_TAG}.purpose", "-"), tags.get(f"{LEASE_TAG}.host", "-"),
                             min(acquired, now), min(expires, now + ttl), ttl, now)
        except (KeyError, ValueError) as err:
            # MLflow's SQL store reads a model and its tags in two statements: a lease deleted (or
            # replaced) between them reads as a model without tags. Seen with 4 processes taking
            # over one lease on SQLite. Read again; a settled lease has all its tags.
            problem = err
            time.sleep(0.05 * (attempt + 1))
    # Not ours to delete: someone named a model like a lease. Held, until a person looks.
    raise RuntimeError(f"registered model {model.name!r} is not a driftline lease ({problem!r} in its tags): "
                       "rename or delete it")


class Lease:
    """`with Lease(store, "rollout", owner, 60):` or `acquire()`/`release()`; `keep_alive()` renews
    it from a thread every ttl/3 while the holder's process lives."""

    def __init__(self, store: MlflowStore, name: str, owner: str, ttl_seconds: float = 60.0, purpose: str = ""):
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if ttl_seconds > MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds {ttl_seconds:g} is longer than a lease may be ({MAX_TTL_SECONDS:g} s)")
        self.store, self.name, self.owner, self.ttl = store, name, owner, float(ttl_seconds)
        self.purpose = purpose or name
        self.model = f"{store.model_name}.lease.{name}"
        self.token: str | None = None
        self.took_over: LeaseInfo | None = None  # the expired holder we saw and replaced, if any
        self.lost: BaseException | None = None

    # -- acquire -------------------------------------------------------------------------
    def acquire(self, wait_seconds: float = 0.0, poll: float = 1.0) -> bool:
        """True when we hold it; False when someone else still did after `wait_seconds`."""
        deadline = time.monotonic() + wait_seconds
        while True:
            if self._try():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(poll, left))

    def _try(self) -> bool:
        replaced = None  # the expired holder seen before we won: whoever deleted it, we replace it
        for _ in range(5):  # a lease released or taken over between our calls: try again at once
            token, now = uuid.uuid4().hex, time.time()
            try:
                self.store.client.create_registered_model(
                    self.model, tags=self._tags(token, now, now + self.ttl),
                    description=f"driftline lease '{self.name}' on model {self.store.model_name}: "
                                f"{self.purpose}. Not a model; deleted when released.")
                self.token, self.lost, self.took_over = token, None, replaced
                return True
            except Exception as err:
                if getattr(err, "error_code", None) not in _RACE:
                    raise unreachable(self.store.tracking_uri, f"take the {self.name} lease", err) from err
            current = holder(self.store, self.name)
            if current is None:
                continue
            if current.token == token:  # our create landed but its answer was lost
                self.token, self.lost, self.took_over = token, None, replaced
                return True
            if not current.expired:
                return False
            replaced = current
            self._take_over(current)
        return False

    def _take_over(self, expired: LeaseInfo) -> None:
        epoch = int((expired.read_at - expired.expires_at) // max(expired.ttl_seconds, 1.0))
        claim = f"{self.model}.takeover.{expired.token}.{epoch}"
        try:
            self.store.client.create_registered_model(claim, tags={LEASE_TAG: "takeover",
                                                                   f"{LEASE_TAG}.owner": self.owner})
        except Exception as err:
            if getattr(err, "error_code", None) in _RACE:
                return  # another contender is taking it over
            raise unreachable(self.store.tracking_uri, f"claim the expired {self.name} lease", err) from err
        try:
            again = holder(self.store, self.name)
            if again is not None and again.token == expired.token and again.expired:
                self._delete(self.model)
        finally:
            # Safe once the old token is gone: a late contender re-reads and finds another token.
            self._delete(claim)

    def _tags(self, token: str, acquired: float, expires: float) -> dict[str, str]:
        return {LEASE_TAG: self.name, f"{LEASE_TAG}.model": self.store.model_name,
                f"{LEASE_TAG}.owner": self.owner, f"{LEASE_TAG}.token": token,
                f"{LEASE_TAG}.purpose": self.purpose, f"{LEASE_TAG}.host": f"{socket.gethostname()}:{os.getpid()}",
                f"{LEASE_TAG}.acquired_at": stamp(acquired), f"{LEASE_TAG}.expires_at": stamp(expires),
                f"{LEASE_TAG}.ttl_seconds": f"{self.ttl:g}"}

    def _delete(self, model: str) -> None:
        _call(self.store, f"delete {model}", self.store.client.delete_registered_model, model)

    # -- hold ------------------------------------------------------------------------------
    @property
    def _margin(self) -> float:  # closer than this to expiry, a holder treats its lease as expired
        return min(5.0, self.ttl / 10)

    def _mine(self) -> LeaseInfo:
        current = holder(self.store, self.name)
        if current is None or current.token != self.token:
            raise LeaseLost(f"the {self.name} lease on {self.store.model_name} is no longer ours ({self.owner}): "
                            + (current.describe() if current else "nobody holds it"))
        return current

    def renew(self) -> None:
        """Push the expiry ttl seconds ahead; LeaseLost when it is not ours or already expired
        (a contender may be taking an expired lease over: writing to it then would race)."""
        current = self._mine()
        if current.expires_at - current.read_at < self._margin:
            raise LeaseLost(f"the {self.name} lease on {self.store.model_name} expired at "
                            f"{iso(current.expires_at)} before {self.owner} renewed it")
        _call(self.store, f"renew the {self.name} lease", self.store.client.set_registered_model_tag, self.model,
              f"{LEASE_TAG}.expires_at", stamp(time.time() + self.ttl))

    def check(self) -> None:
        """Before a change that only the holder may make: raise if the lease is not ours now."""
        if self.lost is not None:
            raise LeaseLost(f"the {self.name} lease on {self.store.model_name} was lost: {self.lost}") from self.lost
        if self._mine().expired:
            raise LeaseLost(f"the {self.name} lease on {self.store.model_name} has expired")

    def adopt(self) -> bool:
        """Take up the lease this owner holds (a failure hook knows only the owner's name)."""
        current = holder(self.store, self.name)
        if current is None or current.owner != self.owner:
            return False
        self.token = current.token
        return True

    def release(self) -> bool:
        """Delete the lease if we hold it. False (and nothing changed) when we do not."""
        if self.token is None:
            return False
        current = holder(self.store, self.name)
        if current is None or current.token != self.token:
            self.token = None
            return False
        left = current.expires_at - time.time()
        if left < self._margin:
            # Expired or about to: let it expire and delete it the way a contender would, so a
            # takeover under way cannot have its new lease deleted by us.
            time.sleep(max(left, 0.0) + 0.05)
            self._take_over(holder(self.store, self.name) or current)
        else:
            self._delete(self.model)
        self.token = None
        return True

    @contextlib.contextmanager
    def keep_alive(self) -> Iterator[Lease]:
        """Renew every ttl/3 from a thread: the lease lives as long as this process (after a SIGKILL
        it expires ttl later). A failed renewal is kept in `lost`; `check()` raises it."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    self.renew()
                except Exception as err:  # noqa: BLE001 - surfaced through check()
                    self.lost = err
                    if isinstance(err, LeaseLost):
                        return

        thread = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=5)

    def retitle(self, purpose: str) -> None:
        """Say what the holder is doing, once it knows (e.g. which version a deploy rolls out)."""
        self.purpose = purpose
        if self.token is not None:
            self._mine()
            _call(self.store, f"retitle the {self.name} lease", self.store.client.set_registered_model_tag,
                  self.model, f"{LEASE_TAG}.purpose", purpose)

    def break_(self) -> LeaseInfo | None:
        """Delete the lease whoever holds it (a person's decision: `driftline rollback --break-lease`,
        for a holder known to be dead); who held it, or None when nobody did."""
        current = holder(self.store, self.name)
        if current is not None:
            self._delete(self.model)
        return current

    def held_message(self) -> str:
        current = holder(self.store, self.name)
        return f"the {self.name} lease on {self.store.model_name} is {current.describe() if current else 'free now'}"

    def __enter__(self) -> Lease:
        if not self.acquire():
            raise LeaseHeld(self.held_message(), holder(self.store, self.name))
        return self

    def __exit__(self, *exc) -> None:
        self.release()
