"""Prefect tasks of a rollout: the lease, rollout tags, alias moves (undone when their promotion
transaction fails), the analysis window, the blue-green smoke test, the roll-back, and the
reconciliation of a dead rollout (with the event that announces a waiting challenger)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.transactions import get_transaction

from driftline.adapters import rollout_state, trust
from driftline.adapters.lease import Lease
from driftline.adapters.predlog import join, read_log
from driftline.adapters.serving_client import ServingClient, client_records
from driftline.adapters.tracking import MlflowStore
from driftline.config import DeploymentConfig, Params, ServeSettings, Settings
from driftline.core import frames
from driftline.core.evaluation import live_scores
from driftline.core.rollout import Analysis, analyze, judge_smoke
from driftline.core.validation import Check
from tasks.registry import address, reopen
from tasks.report import announce_challenger

ROLLED_BACK_EVENT = "driftline.deployment.rolled_back"


def _run_id() -> str:
    return str(flow_run.get_id() or "-")


def owner(run_id: str | None = None) -> str:
    """Who holds the rollout lease: a flow run (its failure hooks find it by this name)."""
    return f"flow run {run_id or _run_id()}"


@task(name="hold-rollout-lease", cache_policy=NONE)
def hold_lease(store: MlflowStore, purpose: str, wait_seconds: float, ttl_seconds: float) -> Lease:
    held = rollout_state.hold(store, owner(), purpose, wait_seconds, ttl_seconds)
    if held.took_over:
        get_run_logger().warning("took over the rollout lease %s: that run died without releasing it",
                                 held.took_over.describe())
    return held


@task(name="read-aliases", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def read_aliases(store: MlflowStore) -> dict[str, str]:
    return store.aliases()


@task(name="admit-version", cache_policy=NONE)
def admit(store: MlflowStore, version: str, force: bool) -> str:
    """Refuses an ungated version unless forced (driftline.adapters.trust)."""
    return trust.admit(store, version, force, _run_id())


@task(name="move-alias", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def move_alias(store: MlflowStore, alias: str, version: str | None, reason: str) -> None:
    """One alias move; inside a promotion transaction, its rollback hook puts the alias back."""
    before = rollout_state.move_alias(store, alias, version, reason, _run_id())
    get_transaction().set("undo", {"store": address(store), "alias": alias, "before": before, "after": version,
                                   "reason": reason, "run_id": _run_id()})


@move_alias.on_rollback
def _put_alias_back(txn) -> None:
    undo = txn.get("undo")
    if not rollout_state.undo_move(reopen(undo["store"]), undo["alias"], undo["before"], undo["after"],
                                   f"undo failed promotion: {undo['reason']}", undo["run_id"]):
        get_run_logger().warning("not undoing @%s: it no longer points at %s", undo["alias"], undo["after"])


@task(name="roll-back", cache_policy=NONE)
def roll_back(store: MlflowStore, version: str, why: str) -> None:
    champion = rollout_state.roll_back(store, version, why, _run_id())
    emit_event(event=ROLLED_BACK_EVENT, resource={"prefect.resource.id": f"driftline.model.{store.model_name}"},
               payload={"model": store.model_name, "version": version, "champion": champion, "reason": why})


@task(name="restore-previous", cache_policy=NONE)
def restore_previous(store: MlflowStore, reason: str) -> tuple[str, str | None]:
    return rollout_state.restore_previous(store, reason, _run_id())


@task(name="end-rollout", cache_policy=NONE)
def finish(store: MlflowStore, held: Lease, why: str, p: Params) -> str:
    """Tags to none/0, a waiting version to @challenger (announced), the lease released."""
    return rollout_state.finish(store, held, _run_id(), why, announcer(p))


@task(name="set-rollout", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def set_rollout(store: MlflowStore, strategy: str, weight: float) -> None:
    store.set_model_tags({rollout_state.STRATEGY_TAG: strategy, rollout_state.WEIGHT_TAG: f"{weight:g}"})


def window(log_dir: str | Path, since: pd.Timestamp, baseline_since: pd.Timestamp,
           versions: tuple[str | None, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The challenger's rows since this step began, and the champion's since the rollout began:
    at a 100% step the champion gets no traffic, so its baseline is what it answered before.
    Only rows of the two versions under test count: rows another version answered (a rollout
    before this one, a version swapped in meanwhile) are not evidence about these two."""
    champion, challenger = versions
    first = min(since, baseline_since).to_pydatetime()
    preds, feedback = read_log(join(log_dir, "predictions"), first), read_log(join(log_dir, "feedback"), first)
    if len(preds):
        when = pd.to_datetime(preds["timestamp"], utc=True)
        version = preds["model_version"].astype(str)
        is_champion = preds["variant"] == "champion"
        preds = preds[(is_champion & (version == str(champion)) & (when >= baseline_since))
                      | (~is_champion & (version == str(challenger)) & (when >= since))]
    return preds, feedback


@task(name="analyze-window", cache_policy=NONE)
def analyze_window(log_dir: str | Path, since: pd.Timestamp, baseline_since: pd.Timestamp, cfg: DeploymentConfig,
                   shadow: bool, versions: tuple[str | None, str], lease: Lease) -> Analysis:
    """Wait out the window, then until enough challenger traffic has arrived, and judge it.
    Each poll checks that this run still holds the rollout lease (LeaseLost otherwise)."""
    start = time.monotonic()
    time.sleep(cfg.window_seconds)
    while True:
        lease.check()
        result = analyze(*window(log_dir, since, baseline_since, versions), cfg, shadow=shadow)
        if result.ready or time.monotonic() - start > cfg.max_wait_seconds:
            return result
        time.sleep(min(2.0, cfg.window_seconds))


@task(name="smoke-test", cache_policy=NONE)
def smoke_test(store: MlflowStore, settings: Settings, p: Params, version: str) -> Analysis:
    """Blue-green: wait until the live server has loaded the staged version (next to the
    champion, which keeps answering), then send it reference rows and compare with offline."""
    with _client(settings) as client:
        try:
            state = client.wait_for(lambda m: (m["challenger"] == version and m["strategy"] == "blue-green")
                                    or version in m["errors"], p.deployment.max_wait_seconds)
        except TimeoutError as err:
            return Analysis(ready=True, checks=[Check("loaded", False, str(err))])
        if version in state["errors"]:
            return Analysis(ready=True, checks=[Check("loaded", False, f"the server could not load version "
                                                      f"{version}: {state['errors'][version]}")])
        info = next(v for v in store.versions() if v.version == version)
        model, reference = store.load_model(info), store.load_reference(info)
        if reference is None:
            return Analysis(ready=True, checks=[Check("reference", False,
                                                      f"version {version} has no reference sample")])
        x = frames.model_features(reference, model, p.data).head(p.deployment.smoke_requests)
        expected = [v.item() if hasattr(v, "item") else v for v in model.predict(x)]
        scores = live_scores(model.predict_proba(x)).tolist() if hasattr(model, "predict_proba") else None
        answers = []
        for record in client_records(x):
            response = client.predict([record], smoke=True)
            answers.append((response.status_code, response.json()))
    return judge_smoke(version, answers, expected, scores)


def switched(settings: Settings, version: str, timeout: float) -> str:
    """After a blue-green promotion: how long the live server took to answer from the new version."""
    start = time.monotonic()
    try:
        with _client(settings) as client:
            state = client.wait_for(lambda m: m.get("champion") == version, timeout)
    except TimeoutError as err:
        return f"the server has not switched yet ({err})"
    kept = f"; version {state['previous']} kept warm for rollback" if state.get("previous") in state["loaded"] else ""
    return f"the server switched in {time.monotonic() - start:.1f} s{kept}"


def _client(settings: Settings) -> ServingClient:
    return ServingClient(settings.serve_url, ServeSettings().token)


def announcer(p: Params):
    """The callback that announces a challenger which waited for a rollout to end: the same
    event training emits, so `auto-deploy` rolls it out."""
    return lambda version: announce_challenger.fn(p.registry.model_name, version, p.deployment.auto_deploy,
                                                  p.deployment.strategy)


@task(name="reconcile-rollout", cache_policy=NONE)
def reconcile_rollout(store: MlflowStore, p: Params) -> str | None:
    """A rollout whose process died (SIGKILL) leaves its tags and an expiring lease: set the
    tags back to none/0 and release the lease (nothing when a live rollout holds it). Says what
    it did in the run's log, and returns it."""
    done = rollout_state.reconcile(store, announcer(p), _run_id())
    if done:
        get_run_logger().warning("reconciled a dead rollout of %s: %s", store.model_name, done)
    return done
