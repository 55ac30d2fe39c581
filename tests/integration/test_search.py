"""The hyperparameter search on a real Dask cluster (`dask scheduler` and `dask worker` processes
on loopback): trials as Prefect tasks on the workers, the same trials and the same registered
model on one worker and on four (and as a plain loop in this process), each trial an MLflow child
run of the training run, and a rerun after a gate change that computes no trial."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.dask_processes import DaskProcesses
from driftline.adapters.registry import search_runs
from driftline.config import load_params
from driftline.core import frames, training
from driftline.core import search as hpo
from tests.integration.conftest import make_project

SEARCH = ("training.search={trials: 8, batch: 4, folds: 2, workers: 2, space: {"
          "learning_rate: {low: 0.02, high: 0.3, log: true}, max_leaf_nodes: {low: 4, high: 32, int: true}, "
          "l2_regularization: {choices: [0.0, 1.0, 10.0]}}}")
FAST = [SEARCH, "training.estimator.max_iter=40"]


def in_process(project, overrides: list[str]) -> list[hpo.Trial]:
    """The same search as a plain loop in this process: what any cluster must reproduce."""
    p = load_params(project.root / "params.yaml", overrides)
    return hpo.in_process(training.split(pd.read_parquet(project.root / "data" / "loans.parquet"), p).train, p)


def child_runs(store, run_id: str):
    return store.client.search_runs([store.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'",
                                    max_results=1000)


def searched(project, overrides: list[str], address: str | None = None) -> dict:
    from flows.training import training_pipeline

    state = training_pipeline(overrides=overrides, reason="test", project_dir=str(project.root),
                              dask_address=address, return_state=True)
    result = state.result()
    assert result["status"] == "registered", result
    store = project.store()
    trials = sorted(child_runs(store, result["run_id"]), key=lambda r: int(r.data.tags["driftline.trial"]))
    return {"result": result, "trials": trials, "store": store,
            "parent": store.client.get_run(result["run_id"])}


def test_the_search_gives_the_same_trials_and_model_on_one_worker_and_on_four(tmp_path):
    expected = None
    outcomes = []
    for workers in (1, 4):
        project = make_project(tmp_path / f"proj{workers}")
        if expected is None:
            expected = in_process(project, FAST)
        with DaskProcesses(workers) as cluster:
            outcomes.append(searched(project, FAST, cluster.address))
    want = [(t.values, t.score) for t in expected]
    for run in outcomes:
        got = [({k: _typed(v) for k, v in r.data.params.items()}, r.data.metrics["cv_score"]) for r in run["trials"]]
        assert got == want  # every trial's values and cross-validated score, in trial order
        best = hpo.best(expected, "maximize")
        assert {k: _typed(v) for k, v in run["parent"].data.params.items() if k.startswith("search.best.")} == \
            {f"search.best.{k}": v for k, v in best.values.items()}
        assert run["parent"].data.metrics["search_trials_computed"] == 8
        paths = [a.path for a in run["store"].client.list_artifacts(run["result"]["run_id"], "search")]
        assert paths == ["search/history.png", "search/trials.csv"]
    workers_seen = [{r.data.tags["driftline.worker"] for r in run["trials"]} for run in outcomes]
    assert len(workers_seen[0]) == 1 and len(workers_seen[1]) >= 2, workers_seen  # it really fanned out
    # The registered models are the same model: the best values fitted on the same training part.
    p = load_params(tmp_path / "proj1" / "params.yaml", FAST)
    rows = frames.features(training.split(pd.read_parquet(tmp_path / "proj1" / "data" / "loans.parquet"), p)
                           .holdout, p.data)
    answers = [run["store"].load_model(run["store"].version_by_alias("champion")).predict_proba(rows)
               for run in outcomes]
    np.testing.assert_array_equal(answers[0], answers[1])


def test_a_rerun_after_a_gate_change_computes_no_trial(tmp_path):
    project = make_project(tmp_path / "proj")
    first = searched(project, FAST)  # a temporary local cluster of training.search.workers processes
    assert {r.data.tags["driftline.cached"] for r in first["trials"]} == {"false"}
    again = searched(project, [*FAST, "evaluation.thresholds.roc_auc.min=0.55"])
    assert again["result"]["version"] == "2"
    assert {r.data.tags["driftline.cached"] for r in again["trials"]} == {"true"}
    assert again["parent"].data.metrics["search_trials_computed"] == 0
    scores = [[r.data.metrics["cv_score"] for r in run["trials"]] for run in (first, again)]
    assert scores[0] == scores[1]
    cached = search_runs.cached(again["store"], first["trials"][0].data.tags[search_runs.SEARCH_KEY])
    assert len(cached) == 8


def _typed(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text

