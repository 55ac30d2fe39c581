"""Prefect tasks of a rollout: the lease, rollout tags, alias moves (undone when their promotion
transaction fails), the analysis window, the blue-green smoke test, the roll-back, and the
reconciliation of a dead rollout (with the event that announces a waiting challenger)."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.transactions import get_transaction

from driftline.adapters.protocols import PredictionLog
from driftline.adapters.registry import rollout_checks, rollout_state, staging, tags, trust
from driftline.adapters.registry.lease import Lease
from driftline.adapters.registry.store import MlflowStore
from driftline.config import Params, RolloutConfig, Settings
from driftline.core.rollout import Analysis
from tasks.registry import address, reopen
from tasks.report import announce_challenger


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
    """Refuses an ungated version unless forced (driftline.adapters.registry.trust)."""
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
    payload = tags.rolled_back_payload(store.model_name, version, champion, why)
    resource = {"prefect.resource.id": tags.model_resource(store.model_name)}
    emit_event(event=tags.ROLLED_BACK, resource=resource, payload=payload)
    emit_event(event=tags.ROLLED_BACK_DEPRECATED, resource=resource,
               payload={**payload, "deprecated": f"renamed {tags.ROLLED_BACK}; this name goes in the next release"})


@task(name="restore-previous", cache_policy=NONE)
def restore_previous(store: MlflowStore, reason: str) -> tuple[str, str | None]:
    return rollout_state.restore_previous(store, reason, _run_id())


@task(name="end-rollout", cache_policy=NONE)
def finish(store: MlflowStore, held: Lease, why: str, p: Params) -> str:
    """Tags to none/0, a waiting version to @challenger (announced), the lease released."""
    return rollout_state.finish(store, held, _run_id(), why, announcer(p))


@task(name="set-rollout", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def set_rollout(store: MlflowStore, strategy: str, weight: float) -> None:
    rollout_state.set_rollout(store, strategy, weight)


@task(name="analyze-window", cache_policy=NONE)
def analyze_window(log: PredictionLog, since: pd.Timestamp, baseline_since: pd.Timestamp, cfg: RolloutConfig,
                   shadow: bool, versions: tuple[str | None, str], lease: Lease) -> Analysis:
    return rollout_checks.analyze_when_ready(log, since, baseline_since, cfg, shadow, versions, lease,
                                             get_run_logger().info)


@task(name="smoke-test", cache_policy=NONE)
def smoke_test(store: MlflowStore, settings: Settings, p: Params, version: str) -> Analysis:
    return rollout_checks.smoke_test(store, settings, p, version)


@task(name="staging-check", cache_policy=NONE)
def staging_check(store: MlflowStore, settings: Settings, p: Params, version: str) -> Analysis:
    return staging.check(store, settings, p, version)


@task(name="wait-for-switch", cache_policy=NONE)
def switched(settings: Settings, version: str, timeout: float) -> rollout_checks.Switch:
    return rollout_checks.switched(settings, version, timeout)


def announcer(p: Params):
    """The callback that announces a challenger which waited for a rollout to end: the same
    event training emits, so `auto-deploy` rolls it out."""
    return lambda version: announce_challenger.fn(p.registry.model_name, version, p.rollout.auto_deploy,
                                                  p.rollout.strategy)


@task(name="reconcile-rollout", cache_policy=NONE)
def reconcile_rollout(store: MlflowStore, p: Params) -> str | None:
    """A rollout whose process died (SIGKILL) leaves its tags and an expiring lease: set the
    tags back to none/0 and release the lease (nothing when a live rollout holds it). Says what
    it did in the run's log, and returns it."""
    done = rollout_state.reconcile(store, announcer(p), _run_id())
    if done:
        get_run_logger().warning("reconciled a dead rollout of %s: %s", store.model_name, done)
    return done


@task(name="picture-rollout-step", cache_policy=NONE)
def picture_step(store: MlflowStore, ui_url: str, version: str, run_id: str, step: str,
                 result: Analysis) -> str | None:
    """The step's evidence as a PNG on the challenger's training run (`rollout/<flow run>/<step>.png`);
    its MLflow URL, or None (no rows to draw, or a picture that failed: a warning)."""
    import re

    from driftline.adapters.registry.pictures import log_figures
    from driftline.core import ops_plots

    rows = result.evidence
    if rows is None or not len(rows):
        return None
    try:
        info = store.version(version)
    except Exception as err:  # noqa: BLE001 - a registry that does not answer: the rollout decides, not this
        get_run_logger().warning(f"picture not drawn: version {version}: {type(err).__name__}: {err}")
        return None
    path = f"rollout/{run_id}/{re.sub(r'[^A-Za-z0-9]+', '-', step).strip('-')}.png"
    champion = rows[rows["variant"] == "champion"]
    logged, failed = log_figures(store, info.run_id, {path: lambda: ops_plots.rollout_step(
        step, champion, rows[rows["variant"] != "champion"], result.checks, result.accuracy)})
    for line in failed:
        get_run_logger().warning(f"picture not drawn: {line}")
    return f"{store.run_url(ui_url, info.run_id)}/artifacts/{path}" if logged else None
