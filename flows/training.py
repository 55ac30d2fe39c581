"""The training pipeline: pull → validate → split → train → evaluate → compare → register.

The flow only sequences tasks and decides. A failed validation or gate fails the flow run
with a Markdown artifact saying why, and nothing is registered; `@champion` only moves
here when the registry says there is no champion yet (a registry that does not answer stops
the run with RegistryUnreachable). Every version registered here carries `driftline.gates=passed`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Cancelled, State
from prefect.transactions import transaction

from driftline import services
from driftline.adapters.registry import training_run
from driftline.adapters.registry.pictures import warm_up as pictures_warm_up
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, MlflowStore, VersionInfo
from driftline.adapters.registry.training_run import Champion, Lineage
from driftline.adapters.registry.trust import GATES_TAG, PASSED
from driftline.config import Params, Settings
from driftline.core import evaluation, model_facts, training
from driftline.core import gates as G
from driftline.core.card import data_facts, model_card
from driftline.core.card import html as card_html
from driftline.core.estimators import EstimatorError
from driftline.core.markdown import training_markdown, validation_markdown
from driftline.core.validation import ValidationReport
from driftline.errors import GatesFailed, PipelineFailure, ValidationFailed
from flows import guard
from flows.search import search_best
from tasks import registry
from tasks.caching import in_project
from tasks.data import load_data, load_version, pull_data, validate_data
from tasks.model import champion_data, compare_with_champion, evaluate_model, score_pinned, split_data, train_model
from tasks.report import announce_challenger, artifact_key, publish_report


@flow(name="training-pipeline", log_prints=True)
def training_pipeline(
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    reason: str = "manual",
    project_dir: str | None = None,
    drift_summary: str | None = None,
    expected_commit: str | None = None,
    search: bool | None = None,
    dask_address: str | None = None,
    drift_event_at: float | None = None,
) -> dict[str, Any] | State:
    """Train, gate and register a model.

    Args:
        params_path: params file, relative to the project directory.
        overrides: `KEY=VALUE` overrides of the params file, e.g. `training.seed=7`.
        reason: why this run happened (manual, schedule, drift, ci); tagged on the MLflow run.
        project_dir: the git+DVC project; defaults to `DRIFTLINE_PROJECT_DIR` or the working directory.
        drift_summary: what the drift monitor saw (set by the `retrain-on-drift` trigger from its event).
        expected_commit: the git commit this run must train (CI passes its SHA); the run fails when the
            project's checkout is elsewhere, so a gate never passes for code it did not see.
        search: run the hyperparameter search of `training.search` (True), skip it (False), or as
            `training.search.enabled` says (None).
        dask_address: an existing Dask scheduler for the search's trials; defaults to
            `DRIFTLINE_DASK_ADDRESS`, else a temporary local cluster.
        drift_event_at: when the drift event that started this run occurred (epoch seconds, set by the
            trigger); the run ends Cancelled when a drift retraining started since has reached a verdict.
    """
    guard.check(params_path, overrides, {"project_dir": (project_dir, None), "dask_address": (dask_address, None),
                                         "reason": (reason, "manual")})
    with services.open_project(project_dir, params_path, [*(overrides or []), *_search_switch(search)]) as project:
        settings, p, svc = project.settings, project.params, project.services
        for line in p.defaults_chosen():
            get_run_logger().warning(line)
        started = time.time()
        if reason == "drift" and (answered := registry.drift_answered(svc.registry, drift_event_at)):
            get_run_logger().info(f"nothing to do: {answered}")
            return Cancelled(message=answered)
        # Drift is expected (the distribution check reports it without blocking) only where the
        # monitor recorded the drift this run answers.
        expected = reason == "drift" and registry.drift_recorded(svc.registry, drift_event_at)
        if reason == "drift" and not expected:
            get_run_logger().warning("no drift recorded by the monitor matches this run's event: the distribution "
                                     "check stays blocking")
        try:
            outcome = _pipeline(settings, p, svc, reason, drift_summary, expected_commit, dask_address, overrides,
                                expected)
        except (GatesFailed, ValidationFailed):
            if reason == "drift":  # a refusal is an answer too: the same drift on the same data is refused again
                registry.record_drift_retraining(svc.registry, started)
            raise
        if reason == "drift":
            registry.record_drift_retraining(svc.registry, started)
        return outcome


def _pipeline(settings: Settings, p: Params, svc, reason: str, drift_summary: str | None,
              expected_commit: str | None, dask_address: str | None, overrides: list[str] | None,
              drift_expected: bool = False) -> dict[str, Any]:
    if p.training.distributed is not None:  # the data in partitions on a Dask cluster: flows/distributed.py
        from flows.distributed import distributed_run

        return distributed_run(settings, p, svc, reason, drift_summary, expected_commit, dask_address, overrides,
                               drift_expected)
    store = svc.registry
    commit = training_run.checkout(settings.root, expected_commit)
    snap = pull_data(svc.data, p.data.path)
    trail = training_run.lineage(settings.root, p, snap.md5, commit, reason, str(flow_run.get_id() or "-"),
                                 drift_summary, overrides)
    existing = registry.trained_before(store, trail.keys)
    if existing is not None:
        return _unchanged(trail, existing)

    # Reading the data and loading the champion are independent: overlap them.
    champion_future = registry.load_champion.submit(store)
    df = load_data(svc.data, snap.path)
    champion: Champion | None = champion_future.result()
    # The data version the champion was trained on, when this run brings another: the new version
    # is checked against it, and it holds the pinned evaluation set.
    previous = load_version(svc.data, p.data.path, champion.md5) \
        if champion and champion.md5 and champion.md5 != snap.md5 and _reads_previous(p) else None
    run_id = registry.open_run(store, trail, champion.info.version if champion else None)
    run_url = store.run_url(settings.mlflow_ui_url, run_id)
    facts = {**trail.facts(), "MLflow run": f"[{run_id}]({run_url})"}
    drawing = None
    try:
        inputs_logged = registry.log_run_inputs.submit(store, run_id, p, df, str(snap.path), snap.md5)
        report = _validate(settings, p, store, run_id, df, trail, champion, inputs_logged,
                           previous if p.validation.previous.enabled else None, drift_expected)

        parts = split_data(df, p)
        trail = trail.with_split(training.split_spec(p, parts))
        registry.log_split(store, run_id, trail)
        if p.training.search is not None and p.training.search.enabled:
            address = dask_address or settings.dask_address
            p, facts["search"] = search_best(store, run_id, parts.train, p, trail, address)
        if p.registry.pictures:
            pictures_warm_up()
        try:
            model = in_project(train_model, settings.state)(parts.train, p, cache_key=trail.keys.train)
        except EstimatorError as err:
            raise PipelineFailure("training", f"{err}. Nothing was registered; the model in production is "
                                  "untouched.") from None
        model = training.at_threshold(model, p)  # the cache is keyed without the threshold
        ev = in_project(evaluate_model, settings.state)(model, parts.train, parts.holdout, p,
                                                        cache_key=trail.keys.evaluate)
        old = champion_data(previous, champion.split, trail.split, parts.train, p) \
            if isinstance(previous, pd.DataFrame) else None
        score = compare_with_champion(champion.model, champion.split, ev, parts.holdout, p,
                                      old.seen if old else None) if champion else None
        pinned = _pinned(settings, svc, p, model, champion, old)
        gates = G.assemble(p, ev, score, pinned, old.groups if old else None)
        registry.log_scores(store, run_id, ev, score, model_facts.fit_metrics(model))
        # Drawn in a thread beside the gates and the registration, which wait for them only to
        # link them from the report: they cost seconds on a large holdout and decide nothing.
        drawing = registry.log_pictures.submit(store, run_id, model, ev, score, parts.holdout, p) \
            if p.registry.pictures else None
        pictures = partial(_pictures_line, drawing, run_url)
        if not G.passed(gates):
            _reject(store, run_id, trail, gates, {**facts, "pictures": pictures()}, report)

        version, verdict = _register(store, run_id, p, trail, model, parts.train, ev, champion, gates, facts, report,
                                     score.metrics if score else {}, pictures)
        return {"status": "registered", "model_name": trail.model, "version": version.version,
                "aliases": version.aliases, "run_id": run_id, "message": verdict, "run_url": run_url,
                "flow_run_id": str(flow_run.get_id() or ""), "metrics": ev.metrics,
                "gates": [g.__dict__ for g in gates]}
    except BaseException as err:
        if drawing is not None:
            drawing.wait()  # the run is closed after its pictures, not under them
        registry.close_failed_run(store, run_id, None if isinstance(err, PipelineFailure) else "error")
        raise


def _reads_previous(p: Params) -> bool:
    return p.validation.previous.enabled or p.evaluation.pinned.source == "champion_holdout"


def _pinned(settings: Settings, svc, p: Params, model, champion: Champion | None, old):
    """Both models on the pinned set: the golden set the params declare, or the champion's holdout
    from its own data version (when this run brings another one)."""
    source = p.evaluation.pinned.source
    if champion is None or source == "none":
        return None
    if source == "golden":
        rows = load_data(svc.data, settings.root / p.evaluation.pinned.path)
        return score_pinned(model, champion.model, rows, p, f"the golden set {p.evaluation.pinned.path}")
    if old is None:
        return None
    return score_pinned(model, champion.model, old.holdout, p,
                        f"version {champion.info.version}'s holdout as its data version labelled it")


def _pictures_line(drawing, run_url: str) -> str:
    """The report's links to the pictures, once they are drawn (`drawing` is None when switched off)."""
    if drawing is None:
        return "switched off (registry.pictures: false)"
    paths = drawing.result(raise_on_failure=False)
    if not isinstance(paths, list):  # a picture never fails the run, nor undoes its registration
        get_run_logger().warning(f"pictures not drawn: {type(paths).__name__}: {paths}")
        return f"not drawn ({type(paths).__name__}: {paths})"
    return ", ".join(f"[{path.removeprefix('plots/').removesuffix('.png')}]({run_url}/artifacts/{path})"
                     for path in paths) or "none drawn"


def _search_switch(search: bool | None) -> list[str]:
    """`search` as an override of training.search.enabled (None: the params decide)."""
    return [] if search is None else [f"training.search.enabled={str(search).lower()}"]


def _unchanged(trail: Lineage, existing: VersionInfo) -> dict[str, Any]:
    verdict = (f"unchanged: data, params, code and dependencies match model version {existing.version} "
               f"(aliases: {', '.join('@' + a for a in existing.aliases) or 'none'}); nothing to do")
    get_run_logger().info(verdict)
    publish_report(artifact_key("training", trail.model),
                   training_markdown(f"Training: {trail.model}", verdict, [], trail.facts()), verdict)
    return {"status": "unchanged", "model_name": trail.model, "version": existing.version,
            "aliases": existing.aliases, "run_id": existing.run_id, "message": verdict}


def _validate(settings: Settings, p: Params, store: MlflowStore, run_id: str, df, trail: Lineage,
              champion: Champion | None, inputs_logged, previous=None,
              drift_expected: bool = False) -> ValidationReport:
    """Schema and quality, and drift against the champion's reference; ValidationFailed stops the run.
    The run's inputs are logged beside validation: they are waited for before anything is recorded."""
    champion_version = champion.info.version if champion else None
    report, drift_html = in_project(validate_data, settings.state)(
        df, p, champion.reference if champion else None, champion_version,
        cache_key=training_run.validation_key(trail.md5, p, trail.code, champion_version, drift_expected),
        drift_expected=drift_expected, previous=previous)
    inputs_logged.result()
    markdown = validation_markdown(report, f"Data validation: {p.data.path}")
    registry.log_validation(store, run_id, markdown, drift_html)
    if not report.passed:
        publish_report(artifact_key("validation", trail.model), markdown, report.summary())
        raise ValidationFailed(report.summary() + ". Nothing was trained or registered; "
                               "the model in production is untouched.")
    return report


def _reject(store: MlflowStore, run_id: str, trail: Lineage, gates: list[G.Gate], facts: dict,
            report: ValidationReport) -> None:
    verdict = "rejected: " + G.failure_paragraph(gates)
    markdown = training_markdown(f"Training: {trail.model}", verdict, gates, facts, report)
    registry.record_rejection(store, run_id, markdown)
    publish_report(artifact_key("training", trail.model), markdown, verdict)
    raise GatesFailed(G.failure_paragraph(gates) + ". Nothing was registered; the model in production is untouched.")


def _register(store: MlflowStore, run_id: str, p: Params, trail: Lineage, model, train_df, ev, champion,
              gates: list[G.Gate], facts: dict, report: ValidationReport,
              champion_metrics: dict[str, float], pictures) -> tuple[VersionInfo, str]:
    """Register and record, all or nothing: in one transaction, so a version whose run was not
    recorded is deleted again (with its alias) by register_model's rollback hook. `pictures()`
    waits for the pictures drawn meanwhile and gives the report's line on them."""
    alias = CHALLENGER if champion else CHAMPION
    with transaction():
        version = registry.register_model(
            store, run_id, model, train_df, evaluation.reference_sample(train_df, model, p), p,
            {**trail.tags(), GATES_TAG: PASSED}, alias,
            f"{trail.reason}: " + ", ".join(f"{k}={v:.4f}" for k, v in ev.metrics.items()), ev.calibrator)
        verdict = _verdict(trail.model, version, alias, champion)
        facts = {**facts, "pictures": pictures()}
        markdown = training_markdown(f"Training: {trail.model}", verdict, gates, facts, report)
        card = model_card(trail.model, version.version, p, ev, champion_metrics, gates,
                          {**trail.facts(), "MLflow run": facts["MLflow run"]}, data_facts(train_df, p),
                          model_facts.describe(model, p), report.checks)
        registry.log_card(store, run_id, card, card_html(card, f"{trail.model} version {version.version}"))
        registry.record_registration(store, run_id, version.version, markdown)
        publish_report(artifact_key("training", trail.model), markdown, verdict)
        publish_report(artifact_key("card", trail.model), card, f"model card of version {version.version}")
    get_run_logger().info(verdict)
    if alias == CHALLENGER and alias in version.aliases:
        announce_challenger(trail.model, version.version, p.rollout.auto_deploy, p.rollout.strategy)
    return version, verdict


def _verdict(name: str, version: VersionInfo, alias: str, champion: Champion | None) -> str:
    if alias not in version.aliases:  # a rollout holds the model: rollout_state.offer_challenger
        return (f"registered {name} version {version.version}; a rollout is in progress, so it becomes "
                f"@{alias} when that rollout ends (announced then)")
    return (f"registered {name} version {version.version} as @{alias}"
            + (" (no champion yet: first champion)" if alias == CHAMPION else
               f"; @champion stays on version {champion.info.version} until deployment"))
