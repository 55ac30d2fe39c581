"""The server's models are loaded with their serving plans: a version from a real MLflow registry
(SQLite on tmp_path) is served by its plan when the plan equals its Pipeline bit for bit, and by
its Pipeline otherwise, saying why on /models and counting it on /metrics; answers through the
plan equal the registered model's predict_proba exactly, for champion and challenger in a canary."""

from __future__ import annotations

import asyncio
import copy
import json

import numpy as np
import pytest

from driftline.adapters.registry import training_run
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, MlflowStore
from driftline.core import demo_data, evaluation, training
from driftline.serving.loader import Rollout, Watcher, load_version
from tests.mlflow_db import empty_store
from tests.unit.core.test_plan import _Nudged


@pytest.fixture(scope="module")
def registry(tmp_path_factory, params):
    """Version 1 (honest), 2 (another seed) and 3 (a derive step the plan does not know: its ratio
    is tripled), with their reference samples, in a registry of their own."""
    root = tmp_path_factory.mktemp("plans")
    store = MlflowStore(empty_store(root / "mlflow.db"), str(root / "artifacts"), "unit", "loan-default").start()
    p = params.model_copy(update={"training": params.training.model_copy(update={"estimator": params.training
                                  .estimator.model_copy(update={"max_iter": 30})})})
    parts = training.split(demo_data.generate(2000, 5), p)
    honest = training.train(parts.train, p)
    other = training.train(parts.train, p.model_copy(update={"training": p.training.model_copy(update={"seed": 7})}))
    nudged = copy.deepcopy(honest)
    nudged.estimator_.steps[0][1].__class__ = _Nudged
    versions = []
    for model in (honest, other, nudged):
        run_id = store.start_run("unit", tags={})
        reference = evaluation.reference_sample(parts.train, model, p)
        versions.append(training_run.register(store, run_id, model, parts.train, reference, p, {}, CHAMPION,
                                              "unit").version)
    yield store, versions, parts
    store.stop()


def test_a_version_is_served_by_its_plan_when_it_equals_the_pipeline(registry):
    store, (honest, _, _), _ = registry
    loaded = load_version(store, honest)
    assert loaded.plan is not None and loaded.plan.kind == "hist_gradient_boosting", loaded.plan_note
    assert loaded.plan_note.startswith("plan: hist_gradient_boosting, equal to the Pipeline bit for bit on ")
    assert not loaded.plan_refused


def test_a_version_whose_plan_differs_is_served_by_its_pipeline_says_why_and_is_counted(registry, tmp_path):
    from driftline.serving.metrics import ServerMetrics

    store, (honest, _, nudged), _ = registry
    store.move_alias(CHAMPION, honest, "test")
    store.move_alias(CHALLENGER, nudged, "test")
    watcher = Watcher(store, keep_previous=False)
    current = watcher.refresh()
    assert current.models[nudged].plan is None and current.models[nudged].plan_refused
    assert "rows differ from the Pipeline" in current.models[nudged].plan_note
    assert current.models[honest].plan is not None and watcher.plans_refused == 1
    text = ServerMetrics({}, watcher).exposition().decode()
    assert f'driftline_serving_plan{{path="pipeline",version="{nudged}"}} 1.0' in text
    assert f'driftline_serving_plan{{path="plan",version="{honest}"}} 1.0' in text
    assert "driftline_plan_refused_total 1.0" in text


def test_answers_through_the_plan_equal_the_registered_models_predict_proba_in_a_canary(registry, tmp_path,
                                                                                           params):
    from driftline.adapters.serving_client import client_records
    from driftline.core import frames
    from tests.unit.serving.test_model_server import Harness

    store, (honest, other, _), parts = registry
    models = {v: load_version(store, v) for v in (honest, other)}
    assert all(m.plan is not None for m in models.values())
    h = Harness(tmp_path, models, Rollout(honest, other, "canary", 0.5), params)
    records = client_records(frames.features(parts.holdout.head(60), params.data))

    async def scenario(s):
        return await asyncio.gather(*(s.predict({}, json.dumps(r).encode()) for r in records))

    answers = h.run(scenario)
    assert {body["variant"] for _, body in answers} == {"champion", "challenger"}
    registered = {v: store.load_model(store.version(v)) for v in (honest, other)}  # loaded afresh
    for (status, body), record in zip(answers, records, strict=True):
        assert status == 200
        expected = registered[body["model_version"]].predict_proba(models[honest].frame([record]))[0]
        said = np.array([body["probabilities"][0][c] for c in models[honest].class_names])
        assert said.tobytes() == expected.tobytes()
