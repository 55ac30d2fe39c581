"""Progressive delivery: `deploy_model` rolls a challenger out and promotes it or rolls it back;
`rollback` restores `@previous`. Aliases and rollout tags in the registry are the only state;
the model server converges on them by itself.

Both flows hold the model's rollout lease (driftline.adapters.rollout_state) for as long as they change
rollout state, so one rollout runs per model whatever starts it. However a run ends (promoted,
rolled back, failed, timed out, crashed, cancelled), its hooks set the weight to 0, clear the
rollout tags and release the lease; a run killed outright leaves a lease that expires, and the
next deploy, drift monitor or the server's own poll treat its tags as no rollout."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.logging.loggers import flow_run_logger
from prefect.transactions import get_transaction, transaction

from driftline import services
from driftline.adapters import rollout_state, trust
from driftline.adapters.lease import Lease, LeaseHeld
from driftline.adapters.tracking import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.config import Params, ServeSettings, Settings, Strategy, load_params
from driftline.core.rollout import Analysis
from tasks.report import artifact_key
from tasks.rollout import analyze_window, announcer, set_rollout, smoke_test, switched

# Longer than any analysis can take with sane settings (defaults: 3 steps, at most 10 min each):
# a run still going after this is stuck, and its TimedOut state runs the failure hook.
DEPLOY_TIMEOUT_SECONDS = 6 * 3600


class RolledBack(RuntimeError):
    pass


def _owner(run_id: str) -> str:
    return f"flow run {run_id}"


def _hold(store: MlflowStore, purpose: str, wait_seconds: float, ttl_seconds: float) -> Lease:
    """The rollout lease, waiting up to `wait_seconds` for a rollout in progress to end; LeaseHeld
    (naming the holder, nothing changed) when it does not."""
    held = rollout_state.lease(store, _owner(_run_id()), purpose, ttl_seconds)
    if not held.acquire(wait_seconds=wait_seconds, poll=min(5.0, max(wait_seconds / 10, 0.5))):
        raise LeaseHeld(f"cannot {purpose}: {held.held_message()}; waited {wait_seconds:g} s and changed nothing",
                        rollout_state.live_holder(store))
    if held.took_over:
        get_run_logger().warning("took over %s: that run died without releasing it",
                                 f"the rollout lease {held.took_over.describe()}")
    if held.took_over or rollout_state.active(store.model_tags()):
        rollout_state.clear(store)  # a dead run's tags must not route traffic under our live lease
    return held


def _dead_rollout(flow, flow_run, state) -> None:
    """Flow hook (failure, timeout, crash, cancellation): only the run's parameters are known here
    (the runner calls it from its own process, by keyword: these names are its). Ends this run's
    rollout if it holds the lease: weight 0, tags cleared, a waiting challenger moved and
    announced, the lease released. Never touches a rollout another run holds."""
    log = flow_run_logger(flow_run, flow)
    params = flow_run.parameters or {}
    settings = Settings.for_project(params.get("project_dir"))
    p = load_params(settings.root / params.get("params_path", "params.yaml"), params.get("overrides"))
    store = services.mlflow_store(settings, p).start()
    run_id = str(flow_run.id)
    done = rollout_state.end_rollout(store, _owner(run_id), run_id, f"{flow.name} run {state.name.lower()}",
                                     announcer(p))
    log.warning("%s %s: %s", flow.name, state.name, done or "no rollout state to undo")


_HOOKS = {"on_failure": [_dead_rollout], "on_crashed": [_dead_rollout], "on_cancellation": [_dead_rollout]}


@task(name="move-alias", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def move_alias(store: MlflowStore, alias: str, version: str | None, reason: str) -> None:
    """One alias move inside the promotion transaction; its rollback hook puts the alias back."""
    before = store.aliases().get(alias)
    get_transaction().set("undo", {"store": (store.tracking_uri, store.artifact_location, store.experiment,
                                             store.model_name), "alias": alias, "before": before, "after": version,
                                   "reason": reason, "run_id": _run_id()})
    store.move_alias(alias, version, reason, _run_id())


@move_alias.on_rollback
def _put_alias_back(txn) -> None:
    """Undo this run's move only: an alias that no longer points where this run put it has been
    moved since by someone else, and putting it back would undo their change."""
    undo = txn.get("undo")
    store = MlflowStore(*undo["store"]).start()
    if store.aliases().get(undo["alias"]) != undo["after"]:
        get_run_logger().warning("not undoing @%s: it no longer points at %s", undo["alias"], undo["after"])
        return
    store.move_alias(undo["alias"], undo["before"], f"undo failed promotion: {undo['reason']}", undo["run_id"])


def promote(store: MlflowStore, version: str, old: str | None, reason: str) -> None:
    """All or nothing: the moves run in one Prefect transaction, and if any of them fails the
    moves already made are rolled back in reverse order, so there is never no champion or two."""
    with transaction():
        set_rollout(store, "none", 0.0)
        if old:
            move_alias(store, PREVIOUS, old, reason)
        move_alias(store, CHAMPION, version, reason)
        move_alias(store, CHALLENGER, None, reason)


def _run_id() -> str:
    return str(runtime.flow_run.get_id() or "-")


@task(name="roll-back", cache_policy=NONE)
def roll_back(store: MlflowStore, version: str, why: str) -> None:
    """Undo what this run changed: the weight to 0 and `@challenger` off the version this run
    put there. `@champion` is not this run's to restore (it never moved it): if it changed
    meanwhile, someone else promoted, and that stands."""
    rollout_state.clear(store)
    if store.aliases().get(CHALLENGER) == version:
        store.move_alias(CHALLENGER, None, f"rolled back: {why}", _run_id())
    champion = store.aliases().get(CHAMPION)
    emit_event(event="driftline.deployment.rolled_back",
               resource={"prefect.resource.id": f"driftline.model.{store.model_name}"},
               payload={"model": store.model_name, "version": version, "champion": champion, "reason": why})


@flow(name="deploy-model", log_prints=True, timeout_seconds=DEPLOY_TIMEOUT_SECONDS, **_HOOKS)
def deploy_model(
    version: str | None = None,
    strategy: Strategy | None = None,
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    project_dir: str | None = None,
    force: bool = False,
    lease_wait_seconds: float = 30.0,
    lease_ttl_seconds: float = rollout_state.ROLLOUT_TTL_SECONDS,
) -> dict[str, Any]:
    """Roll a challenger out and promote it, or roll it back.

    Args:
        version: the model version to deploy; defaults to the one holding @challenger.
        strategy: canary, shadow or blue-green; defaults to `rollout.strategy` in params.
        params_path: params file, relative to the project directory.
        overrides: `KEY=VALUE` overrides, e.g. `rollout.window_seconds=30`.
        project_dir: the project; defaults to `DRIFTLINE_PROJECT_DIR` or the working directory.
        force: deploy a version without `driftline.gates=passed` (recorded on it and in the history).
        lease_wait_seconds: how long to wait for another rollout of the model to end before failing
            with LeaseHeld (which names it). Short by design: a rollout takes minutes.
        lease_ttl_seconds: how long the lease outlives this process if it is killed (renewed every third).
    """
    log = get_run_logger()
    settings = Settings.for_project(project_dir)
    p: Params = load_params(settings.root / params_path, overrides)
    strategy = strategy or p.rollout.strategy
    cfg = p.rollout.as_strategy(strategy)
    store = services.mlflow_store(settings, p).start()
    held = _hold(store, f"deploy {f'v{version}' if version else '@challenger'} ({strategy})", lease_wait_seconds,
                 lease_ttl_seconds)
    with held.keep_alive():
        aliases = store.aliases()
        version = version or aliases.get(CHALLENGER)
        champion = aliases.get(CHAMPION)
        if version is None:
            raise ValueError(f"nothing to deploy: no version given and {p.registry.model_name} has no @challenger")
        held.retitle(f"deploy v{version} ({strategy})")
        if version == champion:
            rollout_state.finish(store, held, _run_id(), "unchanged", announcer(p))
            return {"status": "unchanged", "version": version, "message": f"version {version} is already @champion"}
        forced = trust.admit(store, version, force, _run_id())  # refuses an ungated version unless forced
        strategy_note = f"{strategy}, {forced}" if forced else strategy
        if aliases.get(CHALLENGER) != version:
            store.move_alias(CHALLENGER, version, f"deploy ({strategy_note})", _run_id())
        log_dir = ServeSettings().logs(settings)
        steps: list[tuple[str, Analysis]] = []
        began = pd.Timestamp.now(tz="UTC")
        for mode, weight in cfg.stages:
            since = pd.Timestamp.now(tz="UTC")
            held.check()
            set_rollout(store, mode, weight)
            if strategy == "blue-green":
                result = smoke_test(store, settings, p, version)
                steps.append(("smoke test", result))
            else:
                result = analyze_window(log_dir, since, began, cfg, strategy == "shadow", (champion, version), held)
                steps.append((f"{mode} {weight:.0%}" if mode == "canary" else mode, result))
            log.info("%s: %s", steps[-1][0], result.summary())
            if not result.passed:
                why = f"{steps[-1][0]}: {result.summary()}"
                held.check()
                roll_back(store, version, why)
                _report(p, version, champion, strategy, steps, f"rolled back: {why}")
                raise RolledBack(f"version {version} rolled back at {why}; @champion stays on "
                                 f"{store.aliases().get(CHAMPION)}")
        held.check()
        promote(store, version, champion, f"deploy ({strategy_note}) passed analysis")
    verdict = f"promoted version {version} to @champion" + (f"; @previous is version {champion}" if champion else "")
    ended = rollout_state.finish(store, held, _run_id(), f"promoted version {version}", announcer(p))
    if strategy == "blue-green":
        verdict += "; " + switched(settings, version, cfg.max_wait_seconds)
    _report(p, version, champion, strategy, steps, verdict + (f" ({ended})" if ended else ""))
    log.info(verdict)
    return {"status": "promoted", "version": version, "previous": champion, "message": verdict}


def _report(p: Params, version: str, champion: str | None, strategy: str, steps, verdict: str) -> None:
    lines = [f"# Deployment: {p.registry.model_name} v{version} ({strategy})", "", f"**{verdict}**", "",
             f"Champion before: {champion or 'none'}", "", "| step | check | result | detail |", "|---|---|---|---|"]
    for name, result in steps:
        if not result.ready:
            lines.append(f"| {name} | traffic | **FAIL** | {result.summary()} |")
        for c in result.checks:
            lines.append(f"| {name} | {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |")
    create_markdown_artifact("\n".join(lines), key=artifact_key("deployment", p.registry.model_name),
                             description=verdict)


@flow(name="rollback", log_prints=True, timeout_seconds=3600, **_HOOKS)
def rollback(params_path: str = "params.yaml", project_dir: str | None = None,
             reason: str = "manual rollback", lease_wait_seconds: float = 30.0) -> dict[str, Any]:
    """Point @champion back at @previous (and @previous at the version it replaced), holding the
    rollout lease: a rollout in progress is not undone under its feet (LeaseHeld names it)."""
    settings = Settings.for_project(project_dir)
    p = load_params(settings.root / params_path)
    store = services.mlflow_store(settings, p).start()
    held = _hold(store, "roll back to @previous", lease_wait_seconds, rollout_state.ROLLOUT_TTL_SECONDS)
    with held.keep_alive():
        aliases = store.aliases()
        previous, current = aliases.get(PREVIOUS), aliases.get(CHAMPION)
        if previous is None:
            raise ValueError(f"{p.registry.model_name} has no @previous to roll back to")
        run_id = _run_id()
        rollout_state.clear(store)
        store.move_alias(CHAMPION, previous, reason, run_id)
        store.move_alias(PREVIOUS, current, reason, run_id)
    rollout_state.finish(store, held, run_id, f"rolled back to version {previous}", announcer(p))
    message = f"@champion moved from version {current} back to version {previous}; @previous is now {current}"
    create_markdown_artifact(f"# Rollback: {p.registry.model_name}\n\n**{message}**\n\nReason: {reason}",
                             key=artifact_key("rollback", p.registry.model_name), description=message)
    return {"status": "rolled back", "champion": previous, "previous": current, "message": message}
