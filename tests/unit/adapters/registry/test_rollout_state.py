"""Rollout state under the lease, against a real MLflow SQLite store: training's alias decision,
the end of a rollout, reconciliation of a dead one, and what the server reads from it."""

from __future__ import annotations

import time

import pytest

from driftline.adapters.registry import rollout_state as rs
from driftline.adapters.registry.lease import ROLLOUT, Lease, holder
from driftline.adapters.registry.lease_info import LeaseHeld
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.serving.loader import read_rollout
from tests.mlflow_db import empty_store


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("rollout-state")
    uri, art = empty_store(root / "mlflow.db"), str(root / "artifacts")
    MlflowStore(uri, art, "rollouts", "warm-up").start()
    return uri, art


@pytest.fixture
def store(db, request) -> MlflowStore:
    """A registered model of its own per test, with versions 1 (@champion) and 2 (@challenger)."""
    s = MlflowStore(*db, "rollouts", request.node.name.replace("[", "-").replace("]", "")).start()
    s.client.create_registered_model(s.model_name)
    for _ in range(2):
        s.client.create_model_version(s.model_name, "file:///nowhere/model")
    s.move_alias(CHAMPION, "1", "setup")
    s.move_alias(CHALLENGER, "2", "setup")
    return s


def _new_version(store: MlflowStore) -> str:
    return str(store.client.create_model_version(store.model_name, "file:///nowhere/model").version)


def _expire(store: MlflowStore, owner: str) -> Lease:
    dead = rs.lease(store, owner, "deploy v2 (canary)", ttl=1)
    assert dead.acquire()
    while not holder(store, ROLLOUT).expired:
        time.sleep(0.1)
    return dead


def test_training_moves_challenger_when_no_rollout_holds_the_model(store):
    version = _new_version(store)
    assert rs.offer_challenger(store, version, "registered by training: test", "run-1")
    assert store.aliases()[CHALLENGER] == version
    assert rs.AWAITING_TAG not in store.client.get_model_version(store.model_name, version).tags
    assert store.history()[-1] | {"time": 0} == {"time": 0, "alias": CHALLENGER, "from": "2", "to": version,
                                                  "reason": "registered by training: test", "flow_run_id": "run-1"}
    assert holder(store, ROLLOUT) is None  # the registration's brief lease is released


def test_a_challenger_registered_during_a_rollout_waits_then_moves_when_it_ends(store, monkeypatch):
    monkeypatch.setattr(rs, "REGISTER_WAIT_SECONDS", 0.5)
    rollout = rs.lease(store, "flow run D", "deploy v2 (canary)")
    assert rollout.acquire()
    store.set_model_tags({rs.STRATEGY_TAG: "canary", rs.WEIGHT_TAG: "0.5"})
    version = _new_version(store)
    assert rs.offer_challenger(store, version, "registered by training: test", "run-T") is False
    assert store.aliases()[CHALLENGER] == "2"  # the canary's challenger stays put
    assert store.client.get_model_version(store.model_name, version).tags[rs.AWAITING_TAG] == "true"

    announced = []
    done = rs.finish(store, rollout, "flow run D", "rolled back", announced.append)
    assert announced == [version]
    assert store.aliases()[CHALLENGER] == version
    assert store.model_tags()[rs.STRATEGY_TAG] == "none" and store.model_tags()[rs.WEIGHT_TAG] == "0"
    assert f"version {version}, registered during the rollout, is now @challenger" in done
    assert rs.AWAITING_TAG not in store.client.get_model_version(store.model_name, version).tags
    assert "registered during a rollout" in store.history()[-1]["reason"]
    assert holder(store, ROLLOUT) is None


def test_reconcile_clears_a_dead_rollout_and_names_its_holder(store):
    _expire(store, "flow run K")
    store.set_model_tags({rs.STRATEGY_TAG: "canary", rs.WEIGHT_TAG: "0.5"})
    assert read_rollout(store).weight == 0.0  # the server already ignores the dead rollout's tags
    done = rs.reconcile(store, flow_run_id="monitor-1")
    assert "took back the rollout lease held by flow run K (deploy v2 (canary)" in done
    assert "rollout tags canary/0.5 set to none/0" in done
    assert store.model_tags()[rs.STRATEGY_TAG] == "none" and store.model_tags()[rs.WEIGHT_TAG] == "0"
    assert holder(store, ROLLOUT) is None
    assert store.aliases()[CHALLENGER] == "2"  # not judged bad, only stopped: a later deploy may retry it
    assert rs.reconcile(store) is None  # nothing left to do


def test_reconcile_and_a_failure_hook_leave_a_live_rollout_alone(store):
    live = rs.lease(store, "flow run L", "deploy v2 (canary)")
    assert live.acquire()
    store.set_model_tags({rs.STRATEGY_TAG: "canary", rs.WEIGHT_TAG: "0.5"})
    assert rs.reconcile(store) is None
    assert rs.end_rollout(store, "flow run OTHER", "other", "rollout run failed") is None
    assert store.model_tags()[rs.WEIGHT_TAG] == "0.5" and holder(store, ROLLOUT).owner == "flow run L"
    served = read_rollout(store)
    assert (served.strategy, served.weight, served.ignored) == ("canary", 0.5, "")
    # The owner's own hook ends it.
    assert "set to none/0" in rs.end_rollout(store, "flow run L", "L", "rollout run crashed")
    assert holder(store, ROLLOUT) is None and read_rollout(store).weight == 0.0


def test_rollout_tags_without_a_lease_are_served_as_no_rollout(store):
    store.set_model_tags({rs.STRATEGY_TAG: "shadow", rs.WEIGHT_TAG: "0"})
    served = read_rollout(store)
    assert (served.strategy, served.weight) == ("none", 0.0)
    assert served.ignored == "rollout tags shadow/0 with no live rollout lease"
    assert served.challenger == "2"  # still loaded, but it answers nothing and mirrors nothing


def test_the_staging_role_serves_the_challenger_alone_whatever_the_rollout_tags(store):
    live = rs.lease(store, "flow run S", "deploy v2 (canary)")
    assert live.acquire()
    store.set_model_tags({rs.STRATEGY_TAG: "canary", rs.WEIGHT_TAG: "0.5"})
    staged = read_rollout(store, staging=True)
    assert (staged.champion, staged.challenger, staged.strategy, staged.weight, staged.previous) == (
        "2", None, "none", 0.0, None)
    # The lease and the last drift check are production's business: staging exposes neither.
    assert staged.lease_since is None
    live.release()


def test_the_server_exposes_the_lease_and_the_last_drift_check_it_reads(store):
    from driftline.adapters.registry.drift_events import CHECK_TAG

    assert (read_rollout(store).lease_since, read_rollout(store).drift_checked_at) == (None, None)
    live = rs.lease(store, "flow run M", "deploy v2 (canary)")
    assert live.acquire()
    store.set_model_tags({CHECK_TAG: "1796000000.5"})
    served = read_rollout(store)
    assert served.lease_since == holder(store, ROLLOUT).acquired_at and served.drift_checked_at == 1796000000.5
    live.release()
    assert read_rollout(store).lease_since is None


def test_holding_the_lease_clears_tags_a_dead_run_left_and_a_live_holder_is_named(store):
    store.set_model_tags({rs.STRATEGY_TAG: "canary", rs.WEIGHT_TAG: "0.5"})
    held = rs.hold(store, "flow run A", "deploy v2 (canary)", wait_seconds=0, ttl_seconds=60)
    assert not rs.active(store.model_tags())
    with pytest.raises(LeaseHeld, match=r"cannot roll back to @previous: .*flow run A.*waited 0 s and changed"):
        rs.hold(store, "flow run B", "roll back to @previous", wait_seconds=0, ttl_seconds=60)
    held.release()


def test_an_alias_move_is_undone_only_while_it_still_points_where_this_run_put_it(store):
    assert rs.move_alias(store, CHAMPION, "2", "promote", "run-1") == "1"
    assert rs.undo_move(store, CHAMPION, "1", "2", "undo", "run-1") and store.aliases()[CHAMPION] == "1"
    store.move_alias(CHAMPION, "2", "someone else", "run-2")
    assert not rs.undo_move(store, CHAMPION, "1", "3", "undo", "run-1") and store.aliases()[CHAMPION] == "2"


def test_rolling_back_takes_challenger_off_this_version_only_and_zeroes_the_weight(store):
    store.set_model_tags({rs.STRATEGY_TAG: "canary", rs.WEIGHT_TAG: "0.5"})
    assert rs.roll_back(store, "3", "canary 10%: errors", "run-1") == "1"
    assert store.aliases() == {CHAMPION: "1", CHALLENGER: "2"} and not rs.active(store.model_tags())
    assert rs.roll_back(store, "2", "canary 10%: errors", "run-1") == "1"
    assert store.aliases() == {CHAMPION: "1"} and store.history()[-1]["reason"] == "rolled back: canary 10%: errors"


def test_restoring_previous_swaps_champion_and_previous_or_refuses_without_one(store):
    with pytest.raises(ValueError, match="has no @previous to roll back to"):
        rs.restore_previous(store, "manual rollback", "run-1")
    store.move_alias(PREVIOUS, "2", "setup")
    assert rs.restore_previous(store, "manual rollback", "run-1") == ("2", "1")
    assert store.aliases()[CHAMPION] == "2" and store.aliases()[PREVIOUS] == "1"


def test_a_lease_writes_iso_times_and_reads_the_epoch_seconds_of_a_lease_taken_before(store):
    import re

    from driftline.adapters.registry.tags import LEASE_TAG

    live = rs.lease(store, "flow run N", "deploy v2 (canary)", ttl=30)
    assert live.acquire()
    written = store.client.get_registered_model(live.model).tags
    for key in ("acquired_at", "expires_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", written[f"{LEASE_TAG}.{key}"])
    current = holder(store, ROLLOUT)
    assert current.expires_at - current.acquired_at == pytest.approx(30, abs=0.002) and not current.expired
    # A lease an older driftline took, in epoch seconds, and expired: read, and taken over.
    now = time.time()
    for key, value in (("acquired_at", now - 120), ("expires_at", now - 60)):
        store.client.set_registered_model_tag(live.model, f"{LEASE_TAG}.{key}", f"{value:.3f}")
    old = holder(store, ROLLOUT)
    assert old.acquired_at == pytest.approx(now - 120, abs=0.001) and old.expired
    assert read_rollout(store).lease_since is None  # an expired lease holds nothing
    mine = rs.lease(store, "flow run O", "reconcile")
    assert mine.acquire() and mine.took_over.owner == "flow run N"
    mine.release()
