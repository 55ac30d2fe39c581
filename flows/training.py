"""The training pipeline: pull → validate → split → train → evaluate → compare → register.

The flow only sequences tasks and decides. A failed validation or gate fails the flow run
with a Markdown artifact saying why, and nothing is registered; `@champion` only moves
here when the registry says there is no champion yet (a registry that does not answer stops
the run with RegistryUnreachable). Every version registered here carries `driftline.gates=passed`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline import services
from driftline.adapters import provenance
from driftline.adapters.tracking import CHALLENGER, CHAMPION
from driftline.adapters.trust import GATES_TAG, PASSED
from driftline.config import Params, Settings, load_params
from driftline.core import evaluation, frames, training
from driftline.core import gates as G
from driftline.core.report import training_markdown, validation_markdown
from driftline.errors import GatesFailed, PipelineFailure, ValidationFailed
from tasks.caching import in_project
from tasks.data import load_data, pull_data, validate_data
from tasks.model import compare_with_champion, evaluate_model, split_data, train_model
from tasks.registry import load_champion, log_run_inputs, register_model
from tasks.report import announce_challenger, artifact_key, publish_report


@flow(name="training-pipeline", log_prints=True)
def training_pipeline(
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    reason: str = "manual",
    project_dir: str | None = None,
    drift_summary: str | None = None,
    expected_commit: str | None = None,
) -> dict[str, Any]:
    """Train, gate and register a model.

    Args:
        params_path: params file, relative to the project directory.
        overrides: `KEY=VALUE` overrides of the params file, e.g. `training.seed=7`.
        reason: why this run happened (manual, schedule, drift, ci); tagged on the MLflow run.
        project_dir: the git+DVC project; defaults to `DRIFTLINE_PROJECT_DIR` or the working directory.
        drift_summary: what the drift monitor saw (set by the `retrain-on-drift` trigger from its event).
        expected_commit: the git commit this run must train (CI passes its SHA); the run fails when the
            project's checkout is elsewhere, so a gate never passes for code it did not see.
    """
    log = get_run_logger()
    settings = Settings.for_project(project_dir)
    root = settings.root
    p: Params = load_params(root / params_path, overrides)
    store = services.mlflow_store(settings, p).start()
    name = p.registry.model_name
    report_key = artifact_key("training", name)

    commit = provenance.git_commit(root)
    if expected_commit and not commit.startswith(expected_commit):
        raise PipelineFailure("checkout", f"the project at {root} is at commit {commit}, but this run was asked to "
                              f"train {expected_commit}: update that checkout (git pull) where the flow runs. "
                              "Nothing was trained or registered.")
    snap = pull_data(root, p.data.path)
    code, lock = provenance.code_hash(), provenance.lock_hash(root)
    # Each stage is keyed on what it reads, so changing a gate threshold does not retrain.
    train_key = provenance.key(snap.md5, p.data, p.split, p.training, code, lock)
    eval_key = provenance.key(train_key, p.evaluation)
    run_key = provenance.key(eval_key, p.validation, p.registry)
    tags = {
        "driftline.reason": reason, "driftline.git_commit": commit,
        "driftline.dvc_md5": snap.md5, "driftline.params_hash": p.digest(), "driftline.code_hash": code,
        "driftline.uv_lock_hash": lock, "driftline.cache_key": run_key,
        "driftline.flow_run_id": str(flow_run.get_id() or "-"),
        **({"driftline.drift_summary": drift_summary[:4000]} if drift_summary else {}),
    }
    facts = {"model": name, "reason": reason, "data": f"{p.data.path} (DVC md5 {snap.md5})",
             "git commit": tags["driftline.git_commit"], "params hash": p.digest(), "code hash": code,
             "uv.lock hash": lock, "Prefect flow run": tags["driftline.flow_run_id"]}

    existing = store.find_version("driftline.cache_key", run_key)
    if existing is not None:
        verdict = (f"unchanged: data, params, code and dependencies match model version {existing.version} "
                   f"(aliases: {', '.join('@' + a for a in existing.aliases) or 'none'}); nothing to do")
        log.info(verdict)
        publish_report(report_key, training_markdown(f"Training: {name}", verdict, [], facts), verdict)
        return {"status": "unchanged", "model_name": name, "version": existing.version,
                "aliases": existing.aliases, "run_id": existing.run_id, "message": verdict}

    # Reading the data and loading the champion are independent: overlap them.
    champion_future = load_champion.submit(store)
    df = load_data(snap.path)
    champion = champion_future.result()
    champion_version = champion.info.version if champion else None
    run_id = store.start_run(f"train-{name}", tags={**tags, "driftline.champion_version": champion_version or "none"})
    facts["MLflow run"] = f"[{run_id}]({store.run_url(settings.mlflow_ui_url, run_id)})"
    try:
        inputs_logged = log_run_inputs.submit(store, run_id, _flat_params(p), df, str(snap.path),
                                              Path(p.data.path).stem, snap.md5, p.data.target)
        report, drift_html = in_project(validate_data, settings.state)(
            df, p, champion.reference if champion else None, champion_version,
            cache_key=provenance.key(snap.md5, p.data, p.validation, code, champion_version or "-",
                                     str(reason == "drift")),
            drift_expected=reason == "drift")
        inputs_logged.result()
        val_md = validation_markdown(report, f"Data validation: {p.data.path}")
        store.log_text(run_id, val_md, "validation/report.md")
        if drift_html:
            store.log_text(run_id, drift_html, "validation/drift_report.html")
        if not report.passed:
            publish_report(artifact_key("validation", name), val_md, report.summary())
            raise ValidationFailed(report.summary() + ". Nothing was trained or registered; "
                                   "the model in production is untouched.")

        parts = split_data(df, p)
        tags["driftline.split"] = json.dumps(training.split_spec(p, parts), sort_keys=True)
        store.log(run_id, tags={"driftline.split": tags["driftline.split"]})
        model = in_project(train_model, settings.state)(parts.train, p, cache_key=train_key)
        model = training.at_threshold(model, p)  # the cache is keyed without the threshold
        ev = in_project(evaluate_model, settings.state)(model, parts.train, parts.holdout, p, cache_key=eval_key)
        score = None
        if champion:
            champion_split = json.loads(champion.info.tags.get("driftline.split", "{}"))
            score = compare_with_champion(champion.model, champion_split, ev, parts.holdout, p)
        gates = G.assemble(p, ev, score)
        comparison = score.comparison if score else None
        store.log(run_id, metrics={**{f"holdout_{k}": v for k, v in ev.metrics.items()},
                                   **{f"champion_{k}": v for k, v in (score.metrics if score else {}).items()},
                                   **({"delta_ci_low": comparison.ci_low, "delta_ci_high": comparison.ci_high}
                                      if comparison else {}),
                                   **{f"fairness_gap_{s.attribute}": s.gap for s in ev.slices}})
        if not G.passed(gates):
            verdict = "rejected: " + G.failure_paragraph(gates)
            md = training_markdown(f"Training: {name}", verdict, gates, facts, report)
            store.log(run_id, tags={"driftline.outcome": "rejected"})
            store.log_text(run_id, md, "report.md")
            publish_report(report_key, md, verdict)
            raise GatesFailed(G.failure_paragraph(gates) + ". Nothing was registered; "
                              "the model in production is untouched.")

        alias = CHALLENGER if champion else CHAMPION
        example = frames.features(parts.train.head(5), p.data)
        reference = evaluation.reference_sample(parts.train, model, p)
        version = register_model(
            store, run_id, model, example, model.predict(example), reference,
            tags={**tags, GATES_TAG: PASSED}, alias=alias,
            description=f"{reason}: " + ", ".join(f"{k}={v:.4f}" for k, v in ev.metrics.items()))
        verdict = (f"registered {name} version {version.version} as @{alias}"
                   + (" (no champion yet: first champion)" if alias == CHAMPION else
                      f"; @champion stays on version {champion_version} until deployment"))
        if alias not in version.aliases:  # a rollout holds the model: driftline.adapters.rollout_state.offer_challenger
            verdict = (f"registered {name} version {version.version}; a rollout is in progress, so it becomes "
                       f"@{alias} when that rollout ends (announced then)")
        try:
            store.log(run_id, tags={"driftline.outcome": "registered", "driftline.version": version.version})
            md = training_markdown(f"Training: {name}", verdict, gates, facts, report)
            store.log_text(run_id, md, "report.md")
            store.finish(run_id)
            publish_report(report_key, md, verdict)
        except BaseException:
            # All or nothing: a version whose run was not recorded must not hold an alias.
            store.delete_version(version.version)
            raise
        log.info(verdict)
        if alias == CHALLENGER and alias in version.aliases:
            announce_challenger(name, version.version, p.deployment.auto_deploy, p.deployment.strategy)
        return {"status": "registered", "model_name": name, "version": version.version,
                "aliases": version.aliases, "run_id": run_id, "message": verdict,
                "metrics": ev.metrics, "gates": [g.__dict__ for g in gates]}
    except BaseException as err:
        _close_failed(store, run_id, None if isinstance(err, PipelineFailure) else "error")
        raise


def _close_failed(store, run_id: str, outcome: str | None) -> None:
    """Best effort: a registry that stopped answering must not hide why the run stopped."""
    try:
        if outcome:
            store.log(run_id, tags={"driftline.outcome": outcome})
        store.finish(run_id, "FAILED")
    except Exception as err:  # noqa: BLE001 - the run's own failure is the one to report
        get_run_logger().warning(f"could not mark MLflow run {run_id} failed ({type(err).__name__}: {err})")


def _flat_params(p: Params) -> dict[str, str]:
    est = p.training.estimator.model_dump()
    out = {f"estimator.{k}": v for k, v in est.items()}
    out.update({"seed": p.training.seed, "split.method": p.split.method, "split.test_size": p.split.test_size,
                "task": p.data.task, "target": p.data.target, "features": len(p.data.features),
                "decision_threshold": p.evaluation.decision_threshold})
    return {k: str(v) for k, v in out.items()}
