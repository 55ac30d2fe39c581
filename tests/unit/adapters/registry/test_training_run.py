"""The training run's bookkeeping: cache keys per stage, lineage tags, the checkout check, and the
registration's rollback hook (what Prefect runs when the registration transaction fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.adapters.registry import training_run
from driftline.adapters.registry.store import CHAMPION, MlflowStore
from driftline.errors import PipelineFailure
from tests.mlflow_db import empty_store


def test_a_threshold_change_keeps_the_training_key_and_changes_the_evaluation_key(make_params):
    base = training_run.cache_keys("md5", make_params(), "code", "lock")
    moved = training_run.cache_keys("md5", make_params("evaluation.decision_threshold=0.35"), "code", "lock")
    assert moved.train == base.train and moved.evaluate != base.evaluate and moved.run != base.run


def test_new_data_code_or_dependencies_change_every_key(make_params):
    p = make_params()
    base = training_run.cache_keys("md5", p, "code", "lock")
    for other in (training_run.cache_keys("md5b", p, "code", "lock"), training_run.cache_keys("md5", p, "c2", "lock"),
                  training_run.cache_keys("md5", p, "code", "l2")):
        assert {other.train, other.evaluate, other.run}.isdisjoint({base.train, base.evaluate, base.run})


def test_the_validation_key_follows_the_champion_and_the_drift_expectation(params):
    keys = {training_run.validation_key("md5", params, "code", champion, drift)
            for champion in (None, "1", "2") for drift in (False, True)}
    assert len(keys) == 6


def test_lineage_tags_carry_the_run_key_and_the_split_once_known(params):
    trail = training_run.Lineage("m", "drift", "data/x.parquet", "md5", "abc", "ph", "code", "lock",
                                 training_run.cache_keys("md5", params, "code", "lock"), "run-1", "x" * 5000)
    tags = trail.tags()
    assert tags[training_run.CACHE_KEY_TAG] == trail.keys.run and training_run.SPLIT_TAG not in tags
    assert len(tags["driftline.drift_summary"]) == 4000 and tags["driftline.flow_run_id"] == "run-1"
    split = trail.with_split({"method": "hash", "seed": 0}).tags()[training_run.SPLIT_TAG]
    assert split == '{"method": "hash", "seed": 0}'
    assert trail.facts()["data"] == "data/x.parquet (DVC md5 md5)"


def test_a_checkout_at_another_commit_stops_the_run(tmp_path: Path):
    commit = training_run.checkout(tmp_path, None)  # not a git checkout: "unknown", and no commit was asked for
    assert commit == "unknown"
    with pytest.raises(PipelineFailure, match="asked to train abc1234"):
        training_run.checkout(tmp_path, "abc1234")


class _Txn:
    def __init__(self, values: dict):
        self.values = values

    def get(self, name: str):
        return self.values[name]


def test_a_failed_registration_transaction_deletes_the_version_and_its_alias(tmp_path: Path):
    from tasks import registry

    store = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()
    run_id = store.start_run("unit", tags={})
    version = store.register(f"runs:/{run_id}/model", run_id, {}, CHAMPION, "unit").version
    assert store.aliases() == {CHAMPION: version}
    assert registry._unregister in registry.register_model.on_rollback_hooks
    registry._unregister(_Txn({"registered": {"store": registry.address(store), "version": version}}))
    assert store.versions() == [] and store.aliases() == {}


def test_registering_a_challenger_under_a_live_rollout_leaves_the_alias_to_the_rollout(tmp_path: Path, make_params,
                                                                                      monkeypatch):
    """The store creates the version; the @challenger rule (under the rollout lease) is the caller's:
    with another run holding the lease the version waits, tagged, and no alias moves."""
    from driftline.adapters.registry import rollout_state
    from driftline.adapters.registry.store import CHALLENGER
    from driftline.core import demo_data, training

    monkeypatch.setattr(rollout_state, "REGISTER_WAIT_SECONDS", 0.0)
    p = make_params("training.estimator.max_iter=10", "evaluation.behavioral=[]")
    parts = training.split(demo_data.generate(600, 3), p)
    model = training.train(parts.train, p)
    store = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()

    def register() -> str:
        run_id = store.start_run("unit", tags={})
        return training_run.register(store, run_id, model, parts.train, parts.train.head(50), p, {}, CHALLENGER,
                                     "unit").version

    held = rollout_state.lease(store, "flow run other", "a canary")
    assert held.acquire()
    waiting = register()
    assert CHALLENGER not in store.aliases()
    assert store.version(waiting).tags[rollout_state.AWAITING_TAG] == "true"
    held.release()
    moved = register()  # no rollout: @challenger at once, the waiting one superseded
    assert store.aliases() == {CHALLENGER: moved}
    assert rollout_state.AWAITING_TAG not in store.version(waiting).tags


def test_the_calibrator_travels_with_the_version_and_the_model_predicts_as_without_it(tmp_path: Path, make_params):
    """Fitted on the holdout at evaluation, logged beside the model on the version's run: the
    registered model is the fitted one, unchanged (predict_proba identical), and the monitor reads
    the calibrator back from the version."""
    import cloudpickle
    import numpy as np

    from driftline.adapters.registry import calibrators
    from driftline.core import demo_data, evaluation, frames, training

    p = make_params("training.estimator.max_iter=20", "evaluation.behavioral=[]")
    parts = training.split(demo_data.generate(3000, 3), p)
    model = training.at_threshold(training.train(parts.train, p), p)
    ev = evaluation.evaluate(model, parts.train, parts.holdout, p)
    assert ev.calibrator is not None and ev.calibrator.rows == len(parts.holdout)
    store = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()
    run_id = store.start_run("unit", tags={})
    version = training_run.register(store, run_id, model, parts.train, parts.train.head(50), p, {}, CHAMPION,
                                    "unit", ev.calibrator)
    info = store.version(version.version)
    assert calibrators.load(store, info) == ev.calibrator
    served = store.load_model(info)
    x = frames.features(demo_data.generate(500, 9), p.data)
    assert np.array_equal(served.predict_proba(x), model.predict_proba(x))
    assert b"Calibrator" not in cloudpickle.dumps(served)  # not inside the model
    raw = served.predict_proba(x)
    assert not np.allclose(ev.calibrator.probabilities(raw), raw)  # it would change the scores if it were
    # A version registered before calibrators: none, and the monitor says it estimates from raw scores.
    older = training_run.register(store, store.start_run("unit", tags={}), model, parts.train, parts.train.head(50),
                                  p, {}, CHAMPION, "unit")
    assert calibrators.load(store, store.version(older.version)) is None
