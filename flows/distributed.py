"""The training pipeline on a Dask cluster (training.distributed), chosen by the training flow
when its params ask for it: the same loop (locate → validate → split → fit → evaluate → compare →
register) with the data in partitions on the workers, never gathered in the flow's process.

The flow's process holds what is small: summaries, samples chosen by row hash, each holdout row's
answers (a few numbers a row), the booster. The gates, the card, the server and drift see the
same scikit-learn Pipeline as from an in-process fit.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run
from prefect.transactions import transaction

from driftline.adapters import provenance
from driftline.adapters.registry import training_run
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, MlflowStore
from driftline.adapters.registry.tags import CLUSTER_SHAPE_TAG, RESUMED_TAG, WARM_START_TAG
from driftline.adapters.registry.training_run import Champion, Lineage
from driftline.adapters.registry.trust import GATES_TAG, PASSED
from driftline.config import Params, Settings
from driftline.core import (
    boosting,
    distributed,
    evaluation,
    frames,
    model_facts,
    partition_evaluation,
    partitioned,
    training,
)
from driftline.core import gates as G
from driftline.core.card import html as card_html
from driftline.core.card import model_card
from driftline.core.markdown import training_markdown, validation_markdown
from driftline.errors import PipelineFailure, ValidationFailed
from flows.search import search_best
from flows.training import _pinned, _reject, _unchanged, _verdict
from tasks import distributed as dt
from tasks import registry
from tasks.report import announce_challenger, artifact_key, publish_report


def distributed_run(settings: Settings, p: Params, svc, reason: str, drift_summary: str | None,
                    expected_commit: str | None, dask_address: str | None,
                    overrides: list[str] | None, drift_expected: bool = False) -> dict[str, Any]:
    store, cfg = svc.registry, p.training.distributed
    commit = training_run.checkout(settings.root, expected_commit)
    cluster = dt.connect_cluster(dask_address or settings.dask_address, cfg.local_workers)  # before any work
    try:
        located = dt.locate_data(settings.root, p.data.path)
        trail = training_run.lineage(settings.root, p, located.md5, commit, reason, str(flow_run.get_id() or "-"),
                                     drift_summary, overrides)
        existing = registry.trained_before(store, trail.keys)
        if existing is not None:
            return _unchanged(trail, existing)
        champion = registry.load_champion(store)
        shape = cluster.shape(cfg.partitions)
        dt.verify_data(cluster, located)
        ddf = dask_data_read(located, cfg.partitions)
        run_id = registry.open_run(store, trail, champion.info.version if champion else None)
        store.log(run_id, tags={CLUSTER_SHAPE_TAG: shape.text()})
        try:
            return _train(settings, p, svc, store, cluster, shape, ddf, trail, champion, run_id, located.where,
                          drift_expected)
        except BaseException as err:
            registry.close_failed_run(store, run_id, None if isinstance(err, PipelineFailure) else "error")
            raise
    finally:
        cluster.stop()


def dask_data_read(located, partitions: int):
    from driftline.adapters import dask_data

    return dask_data.read(located, partitions)


def _train(settings: Settings, p: Params, svc, store: MlflowStore, cluster, shape, ddf, trail: Lineage,
           champion: Champion | None, run_id: str, where: str, drift_expected: bool) -> dict[str, Any]:
    log = get_run_logger()
    run_url = store.run_url(settings.mlflow_ui_url, run_id)
    facts = {**trail.facts(), "MLflow run": f"[{run_id}]({run_url})", "cluster": shape.text(),
             "data read from": f"{where} (each object checked against its md5 on a worker)"}
    report, html, near, classes = dt.validate_partitions(ddf, p, champion.reference if champion else None,
                                                         champion.info.version if champion else None,
                                                         drift_expected)
    markdown = validation_markdown(report, f"Data validation: {p.data.path}")
    registry.log_validation(store, run_id, markdown, html)
    if not report.passed:
        publish_report(artifact_key("validation", trail.model), markdown, report.summary())
        raise ValidationFailed(report.summary() + ". Nothing was trained or registered; "
                               "the model in production is untouched.")
    parts = partitioned.split(ddf, p, near.keys)
    trail = trail.with_split(training.split_spec(p, training.Split(None, None)))
    registry.log_split(store, run_id, trail)
    train_sample = dt.sample_partitions(parts.train, p.registry.reference_rows, p, partitioned.REFERENCE_SALT)
    registry.log_run_inputs(store, run_id, p, train_sample, p.data.path, trail.md5)
    if p.training.search is not None and p.training.search.enabled:
        rows = round(report.rows * (1 - p.split.test_size))
        sample = dt.search_sample(parts.train, p.training.distributed.search_sample_rows, rows, p)
        p, facts["search"] = search_best(store, run_id, sample, p, trail, cluster.scheduler_address)
        facts["search"] += f" (trials on a hash-chosen sample of {len(sample):,} training rows)"
        del sample

    warm = _warm_start(p, champion, log)
    prep = dt.prepare_fit(parts.train, p, classes, warm.model if warm else None)
    if warm:
        _check_warm(p, prep, champion)
    key = provenance.key(trail.keys.train, shape.key(), warm.info.version if warm else "-")
    inputs = cluster.client.persist(parts.train.map_partitions(distributed.model_inputs, prep, p, True))
    start = boosting.best_prefix(_booster_of(warm.model)) if warm else None
    fitted = dt.fit_on_cluster(cluster, inputs, p, prep, store, run_id, key, start, shape.workers)
    del inputs
    model = distributed.assemble(p, prep, fitted["booster"])
    tags = {CLUSTER_SHAPE_TAG: shape.text()}
    if warm:
        tags[WARM_START_TAG] = warm.info.version
        facts["warm start"] = f"from version {warm.info.version}'s booster and encoders"
    if fitted["resumed"] is not None:
        found = fitted["resumed"]
        tags[RESUMED_TAG] = f"{found.run_id}@{found.rounds}"
        facts["resumed"] = f"from the checkpoint at round {found.rounds} of run {found.run_id}"
        log.info(f"this fit resumed {facts['resumed']}")
    store.log(run_id, tags=tags)

    holdout_sample = dt.sample_partitions(parts.holdout, partition_evaluation.SAMPLE_ROWS, p,
                                          partitioned.EVALUATION_SALT)
    typical = frames.typical_record(frames.features(train_sample, p.data), p.data)
    scored = dt.evaluate_partitions(cluster.client, parts.holdout, model, champion.model if champion else None,
                                    champion.split if champion else None, holdout_sample, typical, p)
    ev, score = scored.evaluation, scored.champion
    facts["evaluation"] = (f"metrics on all {scored.rows:,} holdout rows; behavioural tests and permutation "
                           f"importance on a hash-chosen sample of {len(holdout_sample):,} of them")
    pinned = _pinned(settings, svc, p, model, champion, None)
    gates = G.assemble(p, ev, score, pinned, None)
    fit_facts = {**model_facts.fit_metrics(model), "fit_seconds": fitted["seconds"], "fit_rounds": fitted["rounds"],
                 "rows_trained": prep.facts.rows}
    registry.log_scores(store, run_id, ev, score, fit_facts)
    pictures = dt.log_pictures(store, run_id, model, scored, holdout_sample, scored.y, p) \
        if p.registry.pictures else None
    facts["pictures"] = ", ".join(f"[{x.removeprefix('plots/').removesuffix('.png')}]({run_url}/artifacts/{x})"
                                  for x in pictures) if pictures is not None else "switched off"
    if not G.passed(gates):
        _reject(store, run_id, trail, gates, facts, report)
    data = {"training rows": f"{prep.facts.rows:,}", **_time_range(prep.facts), "cluster": shape.text()}
    version, verdict = _register(store, run_id, p, trail, model, train_sample, ev, champion, gates, facts, report,
                                 score.metrics if score else {}, data, tags)
    return {"status": "registered", "model_name": trail.model, "version": version.version,
            "aliases": version.aliases, "run_id": run_id, "message": verdict, "run_url": run_url,
            "flow_run_id": str(flow_run.get_id() or ""), "metrics": ev.metrics,
            "gates": [g.__dict__ for g in gates], "cluster": shape.text(),
            "resumed_from": tags.get(RESUMED_TAG), "warm_start_from": tags.get(WARM_START_TAG)}


def _time_range(facts) -> dict[str, str]:
    if facts.first is None or facts.last is None:
        return {}
    return {"time range": f"{facts.first:%Y-%m-%d} to {facts.last:%Y-%m-%d}"}


def _booster_of(model):
    return model_facts.final_estimator(model).get_booster()


def _warm_start(p: Params, champion: Champion | None, log) -> Champion | None:
    if p.training.warm_start != "champion":
        return None
    if champion is None:
        log.warning("warm_start: champion, but there is no champion yet: this fit starts from nothing")
        return None
    kind = getattr(model_facts.final_estimator(champion.model), "get_booster", None)
    if kind is None:
        raise PipelineFailure("warm start", f"the champion (version {champion.info.version}) is no "
                              f"{p.training.estimator.kind} model: a warm start continues a booster of the same "
                              "kind. Remove training.warm_start to train from nothing. Nothing was registered.")
    return champion


def _check_warm(p: Params, prep: distributed.Prepared, champion: Champion) -> None:
    """The champion's encoders must code this data as they coded its own: the same features, and
    every category this training part holds known to them."""
    from driftline.core.training import known_categories

    version = champion.info.version
    names = [str(n) for n in getattr(prep.derive or prep.preprocess, "feature_names_in_", [])]
    if names and names != p.data.feature_names:
        raise PipelineFailure("warm start", f"version {version} was trained on the features {', '.join(names)}; "
                              f"this run has {', '.join(p.data.feature_names)}. Its encoders cannot code them: "
                              "remove training.warm_start to train from nothing. Nothing was registered.")
    known = known_categories(champion.model)
    for column, values in sorted(prep.facts.values.items()):
        new = sorted(v for v in values if v is not None and column in known and v not in known[column])
        if new:
            raise PipelineFailure("warm start", f"the categories changed: {column} holds {', '.join(map(repr, new))}, "
                                  f"which version {version}'s encoders never saw (they would code it as missing). "
                                  "Remove training.warm_start to train from nothing. Nothing was registered.")


def _register(store: MlflowStore, run_id: str, p: Params, trail: Lineage, model, train_sample, ev, champion,
              gates: list[G.Gate], facts: dict, report, champion_metrics: dict[str, float], data: dict[str, str],
              tags: dict[str, str]):
    """As the in-process path registers (all or nothing, in one transaction), with the card's data
    facts from the whole training part and the reference from a hash-chosen sample of it."""
    alias = CHALLENGER if champion else CHAMPION
    with transaction():
        version = registry.register_model(
            store, run_id, model, train_sample, evaluation.reference_sample(train_sample, model, p), p,
            {**trail.tags(), **tags, GATES_TAG: PASSED}, alias,
            f"{trail.reason}: " + ", ".join(f"{k}={v:.4f}" for k, v in ev.metrics.items()))
        verdict = _verdict(trail.model, version, alias, champion)
        markdown = training_markdown(f"Training: {trail.model}", verdict, gates, facts, report)
        card = model_card(trail.model, version.version, p, ev, champion_metrics, gates,
                          {**trail.facts(), "MLflow run": facts["MLflow run"]}, data,
                          model_facts.describe(model, p), report.checks)
        registry.log_card(store, run_id, card, card_html(card, f"{trail.model} version {version.version}"))
        registry.record_registration(store, run_id, version.version, markdown)
        publish_report(artifact_key("training", trail.model), markdown, verdict)
        publish_report(artifact_key("card", trail.model), card, f"model card of version {version.version}")
    get_run_logger().info(verdict)
    if alias == CHALLENGER and alias in version.aliases:
        announce_challenger(trail.model, version.version, p.rollout.auto_deploy, p.rollout.strategy)
    return version, verdict
