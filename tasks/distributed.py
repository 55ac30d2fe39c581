"""Prefect tasks of the distributed training path (training.distributed): one library call each."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from driftline.adapters import dask_cluster, dask_data, dvc_data, evidently_drift
from driftline.adapters.registry import checkpoints
from driftline.adapters.registry.store import MlflowStore
from driftline.config import Params
from driftline.core import boosting, distributed, partition_evaluation, partition_validation, partitioned
from driftline.waiting import heartbeat


@task(name="connect-cluster", cache_policy=NONE)
def connect_cluster(address: str | None, local_workers: int) -> dask_cluster.DaskCluster:
    cluster = dask_cluster.DaskCluster(address, local_workers)
    cluster.start()
    return cluster


def _transient(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    return isinstance(error, dvc_data.DataError) and error.transient


@task(name="locate-data", retries=2, retry_delay_seconds=3, retry_condition_fn=_transient, cache_policy=NONE)
def locate_data(root: Path, data_path: str) -> dask_data.Located:
    return dask_data.locate(root, data_path)


@task(name="verify-data", cache_policy=NONE, timeout_seconds=3600)
def verify_data(cluster: dask_cluster.DaskCluster, located: dask_data.Located) -> None:
    dask_data.verify(cluster.client, located)


@task(name="validate-partitions", cache_policy=NONE)
def validate_partitions(ddf, p: Params, reference: pd.DataFrame | None, reference_version: str | None,
                        drift_expected: bool):
    """The report (schema, quality, derived, and the distribution on a hash-chosen sample), its drift
    HTML, the near-copy keys that repeat, and the classes."""
    with heartbeat(get_run_logger().info, "validating the partitions"):
        report, near, summary = partition_validation.validate_with_summary(ddf, p)
        html = ""
        check = p.validation.distribution
        if report.passed and check.enabled and reference is not None:
            sample = partitioned.hash_sample(ddf, check.sample_size, p, partitioned.DRIFT_SALT)
            report, html = evidently_drift.with_distribution(report, sample, p, reference, reference_version,
                                                             drift_expected)
    return report, html, near, partition_validation.classes_of(summary, p)


@task(name="sample-partitions", cache_policy=NONE)
def sample_partitions(ddf, rows: int, p: Params, salt: int) -> pd.DataFrame:
    return partitioned.hash_sample(ddf, rows, p, salt)


@task(name="search-sample", cache_policy=NONE)
def search_sample(train, rows: int, train_rows: int, p: Params) -> pd.DataFrame:
    share = min(1.0, rows / max(train_rows, 1))
    return train.map_partitions(partitioned.share_sample, share, p, partitioned.SEARCH_SALT,
                                meta=train._meta).compute()


@task(name="prepare-fit", cache_policy=NONE)
def prepare_fit(train, p: Params, classes: list, warm_from=None) -> distributed.Prepared:
    """The steps before the estimator: fitted from the training part's aggregations, or the
    champion's (a warm start), after checking that they fit this data."""
    with heartbeat(get_run_logger().info, "fitting the preprocessing from the partitions"):
        if warm_from is None:
            return distributed.prepare(train, p, classes)
        facts, _ = distributed.scan(train, p, classes)
        return distributed.reuse(warm_from, p, facts, classes)


def _worker_lost(task, task_run, state) -> bool:
    """Retry a fit that failed because the cluster lost a worker or a connection, not a fit that
    fails on its own (its parameters, its data)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and dask_cluster.lost_worker(error)


@task(name="fit-on-cluster", retries=2, retry_delay_seconds=5, retry_condition_fn=_worker_lost, cache_policy=NONE)
def fit_on_cluster(cluster: dask_cluster.DaskCluster, inputs, p: Params, prep: distributed.Prepared,
                   store: MlflowStore, run_id: str, key: str, warm_booster=None, workers: int = 0) -> dict:
    """The booster, fitted on the workers from where the last checkpoint of `key` left it (or from
    `warm_booster`, or from nothing), checkpointed to this run every training.checkpoint_every rounds.
    A retry after a lost worker waits for the cluster to have its `workers` again, and resumes."""
    log = get_run_logger()
    cluster.wait_for(workers, timeout=120)
    if len(cluster.workers()) < workers:
        raise dask_cluster.ClusterError(f"the cluster has {len(cluster.workers())} of the {workers} workers this fit "
                                        "started on, after 120 s; nothing was registered")
    total = distributed.unfitted(p, prep).get_params()["n_estimators"] or 100
    found = checkpoints.latest(store, key)
    start, done_rounds, resumed = warm_booster, 0, None
    if found is not None:
        start = boosting.load(found.raw)
        done_rounds = found.rounds - (warm_booster.num_boosted_rounds() if warm_booster is not None else 0)
        resumed = found
        log.info(f"resuming from the checkpoint at round {found.rounds} of run {found.run_id}"
                 + (" (the fit had ended)" if found.done else ""))
    stopping = p.training.estimator.early_stopping
    remaining = 0 if found is not None and (found.done or boosting.stopped_already(start, stopping and
                                                                                   stopping.rounds)) \
        else total - done_rounds
    began = time.perf_counter()
    if remaining > 0:
        if dask_cluster.free_workers(cluster.client, cluster.workers()):
            log.warning("released the workers from an XGBoost fit whose flow run is gone (its lock was left held)")
        sink_name = f"driftline-checkpoint-{uuid.uuid4().hex}"
        saver = checkpoints.Checkpoints(store, run_id, key)
        with heartbeat(log.info, f"fitting {remaining} rounds on {len(cluster.workers())} workers"), \
                dask_cluster.Relay(cluster.client, sink_name, saver.save) as relay:
            booster = distributed.fit(cluster.client, inputs, p, prep, remaining, start,
                                      dask_cluster.SchedulerSink(sink_name))
        if relay_error := relay.error:
            log.warning(f"a checkpoint could not be stored: {type(relay_error).__name__}: {relay_error}")
    else:
        booster = start
    return {"booster": booster, "seconds": time.perf_counter() - began, "rounds": booster.num_boosted_rounds(),
            "resumed": resumed}


@task(name="evaluate-partitions", cache_policy=NONE)
def evaluate_partitions(client, holdout, model, champion, champion_split: dict | None, sample: pd.DataFrame,
                        typical: dict, p: Params) -> partition_evaluation.Scored:
    with heartbeat(get_run_logger().info, "scoring the holdout partitions"):
        return partition_evaluation.evaluate_partitions(client, holdout, model, champion, champion_split, sample,
                                                        typical, p)


@task(name="log-pictures", cache_policy=NONE)
def log_pictures(store: MlflowStore, run_id: str, model, scored: partition_evaluation.Scored, sample: pd.DataFrame,
                 y_holdout, p: Params) -> list[str]:
    """The pictures of the run: the curves from every holdout row's score, the permutation
    importance on the holdout sample (the picture states its rows)."""
    from driftline.adapters.registry.pictures import log_figures
    from driftline.core import frames, plots

    x_sample, y_sample = frames.features(sample, p.data), frames.target(sample, p.data)
    figures = plots.training_figures(model, scored.evaluation, scored.champion, x_sample, y_holdout, p)
    figures["plots/permutation_importance.png"] = lambda: plots.importance(model, x_sample, y_sample, p)
    logged, failed = log_figures(store, run_id, figures)
    for line in failed:
        get_run_logger().warning(f"picture not drawn: {line}")
    return logged
