"""A distributed fit's checkpoints in the artifact store (a real MLflow SQLite store): the latest of
a key is found again from any run of the experiment, by its key alone; a write whose tags were
never moved leaves the previous checkpoint named; an older round never replaces a newer one."""

from __future__ import annotations

import pytest

from driftline.adapters.registry import checkpoints
from driftline.adapters.registry.store import MlflowStore
from tests.mlflow_db import empty_store


@pytest.fixture
def store(tmp_path) -> MlflowStore:
    return MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "unit-model").start()


def test_the_latest_checkpoint_of_a_key_is_found_from_a_new_run(store):
    assert checkpoints.latest(store, "k1") is None
    first = store.start_run("killed", tags={})
    saver = checkpoints.Checkpoints(store, first, "k1")
    saver.save(10, b"round-10", False)
    saver.save(20, b"round-20", False)
    saver.save(15, b"older", False)  # a relay that read late: never replaces a newer round
    other = checkpoints.Checkpoints(store, store.start_run("other key", tags={}), "k2")
    other.save(40, b"k2-round-40", True)

    found = checkpoints.latest(store, "k1")
    assert (found.run_id, found.rounds, found.raw, found.done) == (first, 20, b"round-20", False)
    assert checkpoints.latest(store, "k2").raw == b"k2-round-40"


def test_a_write_cut_short_leaves_the_previous_checkpoint_whole(store):
    run = store.start_run("cut", tags={})
    saver = checkpoints.Checkpoints(store, run, "k")
    saver.save(10, b"round-10", False)
    # The next checkpoint goes to the other slot; a run killed before its tags moved left only the bytes.
    store.log_bytes(run, b"half-writ", "checkpoint/booster-b.ubj")
    found = checkpoints.latest(store, "k")
    assert (found.rounds, found.raw) == (10, b"round-10")
    saver.save(20, b"round-20", True)
    found = checkpoints.latest(store, "k")
    assert (found.rounds, found.raw, found.done) == (20, b"round-20", True)
