"""Prefect tasks over the MLflow adapter."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftline.adapters.tracking import CHAMPION, MlflowStore, RegistryUnreachable, VersionInfo


@dataclass
class Champion:
    info: VersionInfo
    model: object
    reference: pd.DataFrame | None


def _unless_unreachable(task, task_run, state) -> bool:
    """The store has already retried a registry that does not answer: another round would only
    multiply the wait before the run stops."""
    return not isinstance(state.data, RegistryUnreachable)


@task(name="load-champion", retries=2, retry_delay_seconds=2, cache_policy=NONE, retry_condition_fn=_unless_unreachable)
def load_champion(store: MlflowStore) -> Champion | None:
    """The champion, or None only when the registry says there is none (RegistryUnreachable
    otherwise: training must not take silence for "no champion" and register a first one)."""
    info = store.version_by_alias(CHAMPION)
    if info is None:
        return None
    return Champion(info, store.load_model(info), store.load_reference(info))


@task(name="register-model", retries=1, retry_delay_seconds=2, cache_policy=NONE,
      retry_condition_fn=_unless_unreachable)
def register_model(store: MlflowStore, run_id: str, model, input_example: pd.DataFrame, output_example,
                   reference: pd.DataFrame, tags: dict[str, str], alias: str, description: str) -> VersionInfo:
    store.log_frame(run_id, reference, "reference/reference.parquet")
    uri = store.log_model(run_id, model, input_example, output_example)
    return store.register(uri, run_id, tags, alias, description)


@task(name="log-run-inputs", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def log_run_inputs(store: MlflowStore, run_id: str, params: dict[str, str], df: pd.DataFrame, source: str,
                   name: str, digest: str, target: str) -> None:
    """Params and the dataset input (digest = DVC md5); runs beside validation."""
    store.log(run_id, params=params)
    store.log_dataset(run_id, df, source, name, digest, target, "training")
