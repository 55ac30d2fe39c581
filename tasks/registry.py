"""Prefect tasks over the training run's bookkeeping in MLflow (driftline.adapters.registry.training_run)."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.transactions import get_transaction

from driftline.adapters.registry import drift_events
from driftline.adapters.registry import training_run as run
from driftline.adapters.registry.store import MlflowStore, RegistryUnreachable, VersionInfo
from driftline.config import Params
from driftline.core.comparison import ChampionScore
from driftline.core.evaluation import Evaluation


def _unless_unreachable(task, task_run, state) -> bool:
    """The store has already retried a registry that does not answer: another round would only
    multiply the wait before the run stops."""
    return not isinstance(state.data, RegistryUnreachable)


def address(store: MlflowStore) -> tuple[str, str, str, str, str]:
    """What a rollback hook rebuilds the store from: transaction values are deep-copied, a client is not."""
    return store.tracking_uri, store.artifact_location, store.experiment, store.model_name, store.description


def reopen(store_address) -> MlflowStore:
    return MlflowStore(*store_address).start()


@task(name="load-champion", retries=2, retry_delay_seconds=2, cache_policy=NONE, retry_condition_fn=_unless_unreachable)
def load_champion(store: MlflowStore) -> run.Champion | None:
    return run.load_champion(store)


@task(name="find-trained-version", cache_policy=NONE)
def trained_before(store: MlflowStore, keys: run.CacheKeys) -> VersionInfo | None:
    return run.trained_before(store, keys)


@task(name="drift-already-answered", cache_policy=NONE)
def drift_answered(store: MlflowStore, event_at: float | None) -> str | None:
    return drift_events.answered(store, event_at)


@task(name="drift-recorded-by-the-monitor", cache_policy=NONE)
def drift_recorded(store: MlflowStore, event_at: float | None) -> bool:
    return drift_events.recorded(store, event_at)


@task(name="record-drift-retraining", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def record_drift_retraining(store: MlflowStore, started_at: float) -> None:
    drift_events.record_retrain(store, started_at)


@task(name="open-run", cache_policy=NONE)
def open_run(store: MlflowStore, trail: run.Lineage, champion_version: str | None) -> str:
    return run.open_run(store, trail, champion_version)


@task(name="log-run-inputs", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def log_run_inputs(store: MlflowStore, run_id: str, p: Params, df: pd.DataFrame, source: str, md5: str) -> None:
    """Runs beside validation."""
    run.log_inputs(store, run_id, p, df, source, md5)


@task(name="log-validation", cache_policy=NONE)
def log_validation(store: MlflowStore, run_id: str, markdown: str, drift_html: str) -> None:
    run.log_validation(store, run_id, markdown, drift_html)


@task(name="log-split", cache_policy=NONE)
def log_split(store: MlflowStore, run_id: str, trail: run.Lineage) -> None:
    run.log_split(store, run_id, trail)


@task(name="log-scores", cache_policy=NONE)
def log_scores(store: MlflowStore, run_id: str, ev: Evaluation, score: ChampionScore | None,
               fitted: dict[str, float] | None = None) -> None:
    run.log_scores(store, run_id, ev, score, fitted)


@task(name="log-pictures", cache_policy=NONE)
def log_pictures(store: MlflowStore, run_id: str, model, ev: Evaluation, score: ChampionScore | None,
                 holdout: pd.DataFrame, p: Params) -> list[str]:
    """The model's pictures on the run (plots/*.png); the ones that failed are a warning."""
    from driftline.adapters.registry.pictures import log_figures
    from driftline.core import frames, plots

    x, y = frames.features(holdout, p.data), frames.target(holdout, p.data)
    logged, failed = log_figures(store, run_id, plots.training_figures(model, ev, score, x, y, p))
    for line in failed:
        get_run_logger().warning(f"picture not drawn: {line}")
    return logged


@task(name="log-model-card", cache_policy=NONE)
def log_card(store: MlflowStore, run_id: str, markdown: str, html: str) -> None:
    store.log_text(run_id, markdown, "card/model_card.md")
    store.log_text(run_id, html, "card/model_card.html")


@task(name="record-rejection", cache_policy=NONE)
def record_rejection(store: MlflowStore, run_id: str, markdown: str) -> None:
    run.reject(store, run_id, markdown)


@task(name="register-model", retries=1, retry_delay_seconds=2, cache_policy=NONE,
      retry_condition_fn=_unless_unreachable)
def register_model(store: MlflowStore, run_id: str, model, train_df: pd.DataFrame, reference: pd.DataFrame,
                   p: Params, tags: dict[str, str], alias: str, description: str, calibrator=None) -> VersionInfo:
    """Inside the registration transaction: its rollback hook deletes the version again."""
    version = run.register(store, run_id, model, train_df, reference, p, tags, alias, description, calibrator)
    get_transaction().set("registered", {"store": address(store), "version": version.version})
    return version


@register_model.on_rollback
def _unregister(txn) -> None:
    """All or nothing: a version whose run was not recorded must not hold an alias (deleting the
    version takes its aliases with it)."""
    undo = txn.get("registered")
    reopen(undo["store"]).delete_version(undo["version"])


@task(name="record-registration", cache_policy=NONE)
def record_registration(store: MlflowStore, run_id: str, version: str, markdown: str) -> None:
    run.record_registered(store, run_id, version, markdown)


@task(name="close-failed-run", cache_policy=NONE)
def close_failed_run(store: MlflowStore, run_id: str, outcome: str | None) -> None:
    """Best effort: a registry that stopped answering must not hide why the run stopped."""
    try:
        run.close_failed(store, run_id, outcome)
    except Exception as err:  # noqa: BLE001 - the run's own failure is the one to report
        get_run_logger().warning(f"could not mark MLflow run {run_id} failed ({type(err).__name__}: {err})")
