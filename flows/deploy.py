"""Progressive delivery: `deploy_model` rolls a challenger out and promotes it or rolls it back;
`rollback` restores `@previous`. Aliases and rollout tags in the registry are the only state;
the model server converges on them by itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.transactions import get_transaction, transaction

from driftline import services, trust
from driftline.config import DeploymentConfig, Params, ServeSettings, Settings, load_params
from driftline.core import frames
from driftline.core.evaluation import live_scores
from driftline.core.rollout import Analysis, analyze, judge_smoke
from driftline.core.validation import Check
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from driftline.serving.predlog import join, read_log
from driftline.serving_client import ServingClient, client_records
from driftline.tracking import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from tasks.report import artifact_key


class RolledBack(RuntimeError):
    pass


def _window(log_dir: str | Path, since: pd.Timestamp,
            baseline_since: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The challenger's rows since this step began, and the champion's since the rollout began:
    at a 100% step the champion gets no traffic, so its baseline is what it answered before."""
    first = min(since, baseline_since).to_pydatetime()
    preds, feedback = read_log(join(log_dir, "predictions"), first), read_log(join(log_dir, "feedback"), first)
    if len(preds):
        when = pd.to_datetime(preds["timestamp"], utc=True)
        champion = preds["variant"] == "champion"
        preds = preds[(champion & (when >= baseline_since)) | (~champion & (when >= since))]
    return preds, feedback


def _end_rollout(store: MlflowStore) -> None:
    store.set_model_tags({STRATEGY_TAG: "none", WEIGHT_TAG: "0"})


@task(name="set-rollout", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def set_rollout(store: MlflowStore, strategy: str, weight: float) -> None:
    store.set_model_tags({STRATEGY_TAG: strategy, WEIGHT_TAG: f"{weight:g}"})


@task(name="analyze-window", cache_policy=NONE)
def analyze_window(log_dir: str | Path, since: pd.Timestamp, baseline_since: pd.Timestamp, cfg: DeploymentConfig,
                   shadow: bool) -> Analysis:
    """Wait out the window, then until enough challenger traffic has arrived, and judge it."""
    start = time.monotonic()
    time.sleep(cfg.window_seconds)
    while True:
        result = analyze(*_window(log_dir, since, baseline_since), cfg, shadow=shadow)
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


@task(name="move-alias", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def move_alias(store: MlflowStore, alias: str, version: str | None, reason: str) -> None:
    """One alias move inside the promotion transaction; its rollback hook puts the alias back."""
    before = store.aliases().get(alias)
    get_transaction().set("undo", {"store": (store.tracking_uri, store.artifact_location, store.experiment,
                                             store.model_name), "alias": alias, "before": before,
                                   "reason": reason, "run_id": _run_id()})
    store.move_alias(alias, version, reason, _run_id())


@move_alias.on_rollback
def _put_alias_back(txn) -> None:
    undo = txn.get("undo")
    store = MlflowStore(*undo["store"]).start()
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
    return str(flow_run.get_id() or "-")


@task(name="roll-back", cache_policy=NONE)
def roll_back(store: MlflowStore, version: str, champion: str | None, why: str) -> None:
    run_id = _run_id()
    _end_rollout(store)
    store.move_alias(CHALLENGER, None, f"rolled back: {why}", run_id)
    if champion and store.aliases().get(CHAMPION) != champion:
        store.move_alias(CHAMPION, champion, f"rolled back: {why}", run_id)
    emit_event(event="driftline.deployment.rolled_back",
               resource={"prefect.resource.id": f"driftline.model.{store.model_name}"},
               payload={"model": store.model_name, "version": version, "champion": champion, "reason": why})


@flow(name="deploy-model", log_prints=True)
def deploy_model(
    version: str | None = None,
    strategy: Literal["canary", "shadow", "blue-green"] | None = None,
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    project_dir: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Roll a challenger out and promote it, or roll it back.

    Args:
        version: the model version to deploy; defaults to the one holding @challenger.
        strategy: canary, shadow or blue-green; defaults to `deployment.strategy` in params.
        params_path: params file, relative to the project directory.
        overrides: `KEY=VALUE` overrides, e.g. `deployment.window_seconds=30`.
        project_dir: the project; defaults to `DRIFTLINE_PROJECT_DIR` or the working directory.
        force: deploy a version without `driftline.gates=passed` (recorded on it and in the history).
    """
    log = get_run_logger()
    settings = Settings.for_project(project_dir)
    p: Params = load_params(settings.root / params_path, overrides)
    cfg = p.deployment
    strategy = strategy or cfg.strategy
    store = services.mlflow_store(settings, p).start()
    aliases = store.aliases()
    version = version or aliases.get(CHALLENGER)
    champion = aliases.get(CHAMPION)
    if version is None:
        raise ValueError(f"nothing to deploy: no version given and {p.registry.model_name} has no @challenger")
    if version == champion:
        return {"status": "unchanged", "version": version, "message": f"version {version} is already @champion"}
    forced = trust.admit(store, version, force, _run_id())  # refuses an ungated version unless forced
    strategy_note = f"{strategy}, {forced}" if forced else strategy
    if aliases.get(CHALLENGER) != version:
        store.move_alias(CHALLENGER, version, f"deploy ({strategy_note})", _run_id())
    log_dir = ServeSettings().logs(settings)
    steps: list[tuple[str, Analysis]] = []
    began = pd.Timestamp.now(tz="UTC")
    plan = {"canary": [("canary", w) for w in cfg.steps], "shadow": [("shadow", 0.0)],
            "blue-green": [("blue-green", 0.0)]}[strategy]
    for mode, weight in plan:
        since = pd.Timestamp.now(tz="UTC")
        set_rollout(store, mode, weight)
        if strategy == "blue-green":
            result = smoke_test(store, settings, p, version)
            steps.append(("smoke test", result))
        else:
            result = analyze_window(log_dir, since, began, cfg, shadow=strategy == "shadow")
            steps.append((f"{mode} {weight:.0%}" if mode == "canary" else mode, result))
        log.info("%s: %s", steps[-1][0], result.summary())
        if not result.passed:
            why = f"{steps[-1][0]}: {result.summary()}"
            roll_back(store, version, champion, why)
            _report(p, version, champion, strategy, steps, f"rolled back: {why}")
            raise RolledBack(f"version {version} rolled back at {why}; @champion stays on {champion}")
    promote(store, version, champion, f"deploy ({strategy_note}) passed analysis")
    verdict = f"promoted version {version} to @champion" + (f"; @previous is version {champion}" if champion else "")
    if strategy == "blue-green":
        verdict += "; " + switched(settings, version, cfg.max_wait_seconds)
    _report(p, version, champion, strategy, steps, verdict)
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


@flow(name="rollback", log_prints=True)
def rollback(params_path: str = "params.yaml", project_dir: str | None = None,
             reason: str = "manual rollback") -> dict[str, Any]:
    """Point @champion back at @previous (and @previous at the version it replaced)."""
    settings = Settings.for_project(project_dir)
    p = load_params(settings.root / params_path)
    store = services.mlflow_store(settings, p).start()
    aliases = store.aliases()
    previous, current = aliases.get(PREVIOUS), aliases.get(CHAMPION)
    if previous is None:
        raise ValueError(f"{p.registry.model_name} has no @previous to roll back to")
    run_id = _run_id()
    _end_rollout(store)
    store.move_alias(CHAMPION, previous, reason, run_id)
    store.move_alias(PREVIOUS, current, reason, run_id)
    message = f"@champion moved from version {current} back to version {previous}; @previous is now {current}"
    create_markdown_artifact(f"# Rollback: {p.registry.model_name}\n\n**{message}**\n\nReason: {reason}",
                             key=artifact_key("rollback", p.registry.model_name), description=message)
    return {"status": "rolled back", "champion": previous, "previous": current, "message": message}
