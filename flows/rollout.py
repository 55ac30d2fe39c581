"""Progressive delivery: `rollout` rolls a challenger out and promotes it or rolls it back;
`rollback` restores `@previous`. Aliases and rollout tags in the registry are the only state;
the model server converges on them by itself.

Both flows hold the model's rollout lease (driftline.adapters.registry.rollout_state) for as long as they change
rollout state, so one rollout runs per model whatever starts it. However a run ends (promoted,
rolled back, failed, timed out, crashed, cancelled), its hooks set the weight to 0, clear the
rollout tags and release the lease; a run killed outright leaves a lease that expires, and the
next deploy, drift monitor or the server's own poll treat its tags as no rollout."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.logging.loggers import flow_run_logger
from prefect.runtime import flow_run as current_run
from prefect.transactions import transaction

from driftline import services
from driftline.adapters.registry import rollout_state
from driftline.adapters.registry.lease import ROLLOUT, Lease
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.config import Params, Strategy
from driftline.core import rollout as analysis
from driftline.core.markdown import rollout_markdown
from driftline.core.rollout import Analysis
from flows import guard
from tasks.report import artifact_key, publish_report
from tasks.rollout import (
    admit,
    analyze_window,
    announcer,
    finish,
    hold_lease,
    move_alias,
    owner,
    picture_step,
    read_aliases,
    restore_previous,
    roll_back,
    set_rollout,
    smoke_test,
    staging_check,
    switched,
)

# Longer than any analysis can take with sane settings (defaults: 3 steps, at most 10 min each):
# a run still going after this is stuck, and its TimedOut state runs the failure hook.
ROLLOUT_TIMEOUT_SECONDS = 6 * 3600


# How long a promotion (other than blue-green, which waits its max_wait_seconds) or a rollback
# waits for the servers to answer from the new champion: a few registry polls and a load.
SWITCH_SECONDS = 60.0


class RolledBack(RuntimeError):
    pass


class NotSwitched(RuntimeError):
    """The registry moved, and a server that answers still serves another version (its new
    champion would not load): the message names the server and the load error."""


def _dead_rollout(flow, flow_run, state) -> None:
    """Flow hook (failure, timeout, crash, cancellation): only the run's parameters are known here
    (the runner calls it from its own process, by keyword: these names are its). Ends this run's
    rollout if it holds the lease: weight 0, tags cleared, a waiting challenger moved and
    announced, the lease released. Never touches a rollout another run holds."""
    log = flow_run_logger(flow_run, flow)
    params = flow_run.parameters or {}
    run_id = str(flow_run.id)
    with services.open_project(params.get("project_dir"), params.get("params_path", "params.yaml"),
                               params.get("overrides")) as project:
        done = rollout_state.end_rollout(project.registry, owner(run_id), run_id,
                                         f"{flow.name} run {state.name.lower()}", announcer(project.params))
    log.warning("%s %s: %s", flow.name, state.name, done or "no rollout state to undo")


_HOOKS = {"on_failure": [_dead_rollout], "on_crashed": [_dead_rollout], "on_cancellation": [_dead_rollout]}


def promote(store: MlflowStore, version: str, old: str | None, reason: str) -> None:
    """All or nothing: the moves run in one Prefect transaction, and if any of them fails the
    moves already made are rolled back in reverse order, so there is never no champion or two."""
    with transaction():
        set_rollout(store, "none", 0.0)
        if old:
            move_alias(store, PREVIOUS, old, reason)
        move_alias(store, CHAMPION, version, reason)
        move_alias(store, CHALLENGER, None, reason)


@flow(name="rollout", log_prints=True, timeout_seconds=ROLLOUT_TIMEOUT_SECONDS, **_HOOKS)
def rollout(
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
    defaults = guard.check(params_path, overrides, {
        "project_dir": (project_dir, None), "force": (force, False),
        "lease_ttl_seconds": (lease_ttl_seconds, rollout_state.ROLLOUT_TTL_SECONDS)})
    with services.open_project(project_dir, params_path, overrides) as project:
        if defaults is not None:
            guard.rollout_request(version, strategy, read_aliases(project.registry).get(CHALLENGER),
                                  project.params.rollout.strategy, defaults)
        return _roll_out(project, version, strategy or project.params.rollout.strategy, force, lease_wait_seconds,
                         lease_ttl_seconds)


def _roll_out(project: services.Project, version: str | None, strategy: Strategy, force: bool,
              lease_wait_seconds: float, lease_ttl_seconds: float) -> dict[str, Any]:
    log = get_run_logger()
    settings, p, svc = project.settings, project.params, project.services
    cfg = p.rollout.as_strategy(strategy)
    store = svc.registry
    held = hold_lease(store, f"deploy {f'v{version}' if version else '@challenger'} ({strategy})",
                      lease_wait_seconds, lease_ttl_seconds)
    with held.keep_alive():
        aliases = read_aliases(store)
        version = version or aliases.get(CHALLENGER)
        champion = aliases.get(CHAMPION)
        if version is None:
            raise ValueError(f"nothing to deploy: no version given and {p.registry.model_name} has no @challenger")
        held.retitle(f"deploy v{version} ({strategy})")
        if version == champion:
            finish(store, held, "unchanged", p)
            return {"status": "unchanged", "version": version, "message": f"version {version} is already @champion"}
        forced = admit(store, version, force)  # refuses an ungated version unless forced
        strategy_note = f"{strategy}, {forced}" if forced else strategy
        if aliases.get(CHALLENGER) != version:
            move_alias(store, CHALLENGER, version, f"deploy ({strategy_note})")
        steps: list[tuple[str, Analysis]] = []
        pictures: list[tuple[str, str]] = []  # (step, URL of its picture in MLflow)
        began = pd.Timestamp.now(tz="UTC")
        # Staging first: the challenger tested inside the serving infrastructure, with no
        # production traffic yet (the weight is still 0).
        for mode, weight in ([("staging", 0.0)] if cfg.staging else []) + cfg.stages:
            since = pd.Timestamp.now(tz="UTC")
            held.check()
            if mode == "staging":
                result = staging_check(store, settings, p, version)
            elif strategy == "blue-green":
                set_rollout(store, mode, weight)
                result = smoke_test(store, settings, p, version)
            else:
                set_rollout(store, mode, weight)
                result = analyze_window(svc.prediction_log, since, began, cfg, strategy == "shadow",
                                        (champion, version), held)
            steps.append((analysis.step_name(mode, weight), result))
            log.info("%s: %s", steps[-1][0], result.summary())
            picture = picture_step(store, settings.mlflow_ui_url, version, str(current_run.id), steps[-1][0], result)
            if picture:
                pictures.append((steps[-1][0], picture))
            if not result.passed:
                why = f"{steps[-1][0]}: {result.summary()}"
                held.check()
                roll_back(store, version, why)
                _report(p, version, champion, strategy, steps, f"rolled back: {why}", pictures)
                raise RolledBack(f"version {version} rolled back at {why}; @champion stays on "
                                 f"{read_aliases(store).get(CHAMPION)}")
        held.check()
        promote(store, version, champion, f"deploy ({strategy_note}) passed analysis")
    verdict = analysis.promotion_verdict(version, champion)
    ended = finish(store, held, f"promoted version {version}", p)
    servers = switched(settings, version, cfg.max_wait_seconds if strategy == "blue-green" else SWITCH_SECONDS)
    verdict += "; " + servers.text
    _report(p, version, champion, strategy, steps, verdict + (f" ({ended})" if ended else ""), pictures)
    if not servers.ok:
        log.error(verdict)
        raise NotSwitched(verdict)
    log.info(verdict)
    return {"status": "promoted", "version": version, "previous": champion, "message": verdict,
            "steps": {name: result.summary() for name, result in steps}}  # what each step was judged on


def _report(p: Params, version: str, champion: str | None, strategy: str, steps, verdict: str,
            pictures: list[tuple[str, str]]) -> None:
    name = p.registry.model_name
    markdown = rollout_markdown(name, version, champion, strategy, steps, verdict)
    if pictures:
        markdown += "\n\nPictures (MLflow): " + ", ".join(f"[{step}]({url})" for step, url in pictures)
    publish_report(artifact_key("rollout", name), markdown, verdict)


@flow(name="rollback", log_prints=True, timeout_seconds=3600, **_HOOKS)
def rollback(params_path: str = "params.yaml", project_dir: str | None = None,
             reason: str = "manual rollback", lease_wait_seconds: float = 30.0,
             break_lease: bool = False) -> dict[str, Any]:
    """Point @champion back at @previous (and @previous at the version it replaced), holding the
    rollout lease: a rollout in progress is not undone under its feet (LeaseHeld names it).
    `break_lease`: break that lease first, whoever holds it (recorded in the history)."""
    guard.check(params_path, None, {"project_dir": (project_dir, None), "break_lease": (break_lease, False)})
    with services.open_project(project_dir, params_path) as project:
        store, p = project.registry, project.params
        if break_lease:
            broken = Lease(store, ROLLOUT, owner=f"rollback:{current_run.get_id() or '-'}").break_()
            if broken is not None:
                store.record_change("rollout lease", broken.owner, None,
                                     f"broken by `driftline rollback --break-lease` ({broken.describe()})")
        held = hold_lease(store, "roll back to @previous", lease_wait_seconds, rollout_state.ROLLOUT_TTL_SECONDS)
        with held.keep_alive():
            previous, current = restore_previous(store, reason)
        finish(store, held, f"rolled back to version {previous}", p)
        servers = switched(project.settings, previous, SWITCH_SECONDS)
    message = (f"@champion moved from version {current} back to version {previous}; @previous is now {current}; "
               f"{servers.text}")
    publish_report(artifact_key("rollback", p.registry.model_name),
                   f"# Rollback: {p.registry.model_name}\n\n**{message}**\n\nReason: {reason}", message)
    if not servers.ok:
        raise NotSwitched(message)
    return {"status": "rolled back", "champion": previous, "previous": current, "message": message}
