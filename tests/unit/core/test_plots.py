"""Every picture a training run draws, drawn from a real model and a real comparison with a
champion: each has its data on it and a title that reads on its own; and a picture that fails
is skipped and reported, never raised."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from driftline.adapters.registry.pictures import log_figures
from driftline.adapters.registry.store import MlflowStore
from driftline.core import comparison, demo_data, evaluation, frames, plots, training
from tests.mlflow_db import empty_store


@pytest.fixture(scope="module")
def trained():
    from driftline.config import load_params
    from tests.unit.conftest import PARAMS_FILE

    p = load_params(PARAMS_FILE, ["training.estimator.max_iter=30"])
    parts = training.split(demo_data.generate(4000, 3), p)
    champion = training.train(parts.train, load_params(PARAMS_FILE, ["training.estimator.max_iter=5"]))
    model = training.train(parts.train, p)
    ev = evaluation.evaluate(model, parts.train, parts.holdout, p)
    score = comparison.score_champion(champion, training.split_spec(p, parts), ev, parts.holdout, p)
    x, y = frames.features(parts.holdout, p.data), frames.target(parts.holdout, p.data)
    return model, ev, score, x, y, p


def test_every_binary_picture_is_drawn_with_the_champion_beside_the_challenger(trained):
    figures = plots.training_figures(*trained)
    assert set(figures) == {f"plots/{n}.png" for n in (
        "roc_pr", "calibration", "score_distribution", "confusion_matrix", "permutation_importance", "slices",
        "behavioral", "bootstrap")}
    for path, draw in figures.items():
        fig = draw()
        titles = [ax.get_title() for ax in fig.axes]
        assert all(titles) and any(ax.has_data() or ax.tables for ax in fig.axes), path
        if path in ("plots/roc_pr.png", "plots/calibration.png"):
            labels = fig.axes[0].get_legend_handles_labels()[1]
            assert any(t.startswith("challenger") for t in labels) and any(t.startswith("champion") for t in labels)
    score = trained[2]
    assert len(score.comparison.deltas) == score.comparison.samples and np.isfinite(score.comparison.deltas).all()


def test_a_picture_that_fails_is_reported_and_the_others_are_logged(trained, tmp_path):
    store = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()
    run_id = store.start_run("pictures", {})
    figures = {"plots/ok.png": plots.training_figures(*trained)["plots/confusion_matrix.png"],
               "plots/broken.png": lambda: 1 / 0}
    logged, failed = log_figures(store, run_id, figures)
    assert logged == ["plots/ok.png"]
    assert failed == ["plots/broken.png: ZeroDivisionError: division by zero"]
    assert [a.path for a in store.client.list_artifacts(run_id, "plots")] == ["plots/ok.png"]
    assert plt.get_fignums() == []  # no figure went through pyplot's global registry


def test_a_regression_run_draws_its_own_pictures_with_the_champion_overlaid(regression_case):
    p, df = regression_case
    parts = training.split(df, p)
    model = training.train(parts.train, p)
    champion = training.train(parts.train, p.model_copy(update={"training": p.training.model_copy(
        update={"seed": p.training.seed + 1})}))
    ev = evaluation.evaluate(model, parts.train, parts.holdout, p)
    score = comparison.score_champion(champion, training.split_spec(p, parts), ev, parts.holdout, p)
    x, y = frames.features(parts.holdout, p.data), frames.target(parts.holdout, p.data)
    figures = plots.training_figures(model, ev, score, x, y, p)
    assert {"plots/regression.png", "plots/permutation_importance.png", "plots/bootstrap.png"} <= set(figures)
    assert "plots/roc_pr.png" not in figures
    fig = figures["plots/regression.png"]()
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["challenger", "champion"] and all(ax.get_title() for ax in fig.axes)


def test_permutation_importance_in_one_batch_equals_shuffling_one_column_at_a_time(trained):
    import pandas as pd

    model, _, _, x, y, p = trained
    ax = plots.importance(model, x, y, p, repeats=2).axes[0]
    drawn = {t.get_text(): bar.get_width() for t, bar in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    # The reference: each shuffled copy scored by its own model call, the same seeded shuffles.
    rows = plots._rows(len(x), p.training.seed, plots.IMPORTANCE_ROWS)
    sample, truth, n = x.iloc[rows].reset_index(drop=True), y[rows], len(rows)
    metric = p.evaluation.primary_metric
    base = evaluation.metrics(truth, evaluation.predict(model, sample, p), p.data.task)[metric]
    rng = np.random.default_rng(p.training.seed)
    expected = {}
    for col in sample.columns:
        scores = [evaluation.metrics(truth, evaluation.predict(model, sample.assign(
            **{col: sample[col].to_numpy()[rng.permutation(n)]}), p), p.data.task)[metric] for _ in range(2)]
        expected[col] = base - float(np.mean(scores))  # roc_auc: higher is better, so a drop is base - score
    top = pd.Series(expected).sort_values(ascending=False).index[:len(drawn)]
    assert set(drawn) == set(top)
    assert drawn == pytest.approx({c: expected[c] for c in drawn}, abs=1e-12)


def test_figures_drawn_in_several_threads_at_once_are_the_figures_drawn_one_by_one(trained):
    """No lock: a training run's pictures, the warm-up and another flow run's pictures may draw
    at the same time, and each PNG must be what it would be alone."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    figures = plots.training_figures(*trained)

    def png(path: str) -> bytes:
        out = io.BytesIO()
        figures[path]().savefig(out, format="png")
        return out.getvalue()

    alone = {path: png(path) for path in figures}
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(png, [*figures, *figures, *figures]))
    assert together == [alone[path] for path in [*figures, *figures, *figures]]
    assert plt.get_fignums() == []


def test_the_warm_up_draws_in_the_background_and_leaves_no_figure_open():
    from driftline.adapters.registry.pictures import warm_up

    thread = warm_up()
    assert thread.daemon and thread.name == "pictures-warm-up"
    thread.join(60)
    assert not thread.is_alive() and plt.get_fignums() == []
