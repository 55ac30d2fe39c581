"""Time stamps from the future cannot pin a lease, silence drift or mute the stale-check alert, and
an alias moved behind driftline's back is reported; against a real MLflow SQLite store."""

from __future__ import annotations

import time

import pytest

from driftline.adapters.registry import drift_events, history
from driftline.adapters.registry.lease import MAX_TTL_SECONDS, ROLLOUT, Lease, holder
from driftline.adapters.registry.store import CHAMPION, MlflowStore
from driftline.adapters.registry.tags import LEASE_TAG, stamp
from tests.mlflow_db import empty_store

YEAR = 365 * 24 * 3600.0


@pytest.fixture
def store(tmp_path) -> MlflowStore:
    s = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()
    s.client.create_registered_model(s.model_name)
    return s


def test_a_lease_cannot_be_taken_for_longer_than_an_hour(store):
    with pytest.raises(ValueError, match="longer than a lease may be"):
        Lease(store, ROLLOUT, "me", ttl_seconds=1e9)
    assert Lease(store, ROLLOUT, "me", ttl_seconds=MAX_TTL_SECONDS).acquire()


def test_a_lease_written_far_into_the_future_expires_one_capped_length_from_now(store):
    """What `--lease-ttl 1e9` and a kill used to leave: a lease no one could take for 31 years."""
    lease = Lease(store, ROLLOUT, "killed", ttl_seconds=60)
    assert lease.acquire()
    model = f"{store.model_name}.lease.{ROLLOUT}"
    store.client.set_registered_model_tag(model, f"{LEASE_TAG}.expires_at", stamp(time.time() + YEAR))
    store.client.set_registered_model_tag(model, f"{LEASE_TAG}.ttl_seconds", "1e9")
    seen = holder(store, ROLLOUT)
    assert seen.expires_at <= seen.read_at + MAX_TTL_SECONDS and seen.ttl_seconds == MAX_TTL_SECONDS


def test_break_lease_frees_a_lease_whoever_holds_it(store):
    assert Lease(store, ROLLOUT, "gone", ttl_seconds=3600).acquire()
    broken = Lease(store, ROLLOUT, "person").break_()
    assert broken.owner == "gone" and holder(store, ROLLOUT) is None
    assert Lease(store, ROLLOUT, "next", ttl_seconds=60).acquire()


def test_a_drift_stamp_from_the_future_neither_silences_drift_nor_answers_a_retraining(store):
    store.set_model_tags({drift_events.LAST_DRIFT_TAG: stamp(time.time() + YEAR),
                          drift_events.RETRAIN_TAG: stamp(time.time() + YEAR),
                          drift_events.CHECK_TAG: stamp(time.time() + YEAR)})
    assert drift_events.hours_since_last(store) is None  # no cooldown from the future
    assert drift_events.answered(store, time.time()) is None  # a retraining still answers new drift
    assert drift_events.recorded(store, time.time()) is False  # nor does it vouch for a forged event
    assert drift_events.checked_at(store.model_tags()) is None  # the stale-check alert stays armed


def test_the_monitors_own_record_vouches_for_a_drift_event(store):
    now = time.time()
    store.set_model_tags({drift_events.LAST_DRIFT_TAG: stamp(now)})
    assert drift_events.recorded(store, now - 1) is True
    assert drift_events.recorded(store, now + 3600) is False  # an event later than any the monitor emitted
    assert drift_events.recorded(store, None) is False


def test_an_alias_moved_outside_driftline_is_reported(store):
    version = store.client.create_model_version(store.model_name, "file:///nowhere/model").version
    store.move_alias(CHAMPION, str(version), "test: recorded")
    assert history.unrecorded(store) == {}
    other = store.client.create_model_version(store.model_name, "file:///nowhere/model").version
    store.client.set_registered_model_alias(store.model_name, CHAMPION, other)  # MLflow's UI does this
    moved = history.unrecorded(store)
    assert moved == {CHAMPION: (str(other), str(version))}
    (line,) = history.describe(moved)
    assert f"@champion points at {other}, but its last recorded change set it to {version}" in line
