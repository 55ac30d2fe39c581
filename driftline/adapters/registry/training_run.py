"""The bookkeeping of one training run in MLflow: its lineage tags and cache keys, its inputs,
its validation and scores, its outcome, and the registration of its model.

The training flow sequences these; each is one task there, so a flow reads like the loop and
not like a list of store calls.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from driftline.adapters import provenance
from driftline.adapters.registry import calibrators, rollout_state
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, MlflowStore, VersionInfo
from driftline.adapters.registry.tags import (
    CACHE_KEY_TAG,
    CHAMPION_VERSION_TAG,
    CODE_HASH_TAG,
    DRIFT_SUMMARY_TAG,
    DVC_MD5_TAG,
    FLOW_RUN_TAG,
    GIT_COMMIT_TAG,
    LOCK_HASH_TAG,
    OUTCOME_TAG,
    OVERRIDES_TAG,
    PARAMS_HASH_TAG,
    REASON_TAG,
    SPLIT_TAG,
    VERSION_TAG,
)
from driftline.config import Params
from driftline.core import frames, training
from driftline.core.comparison import ChampionScore
from driftline.core.evaluation import Evaluation
from driftline.errors import PipelineFailure


@dataclass(frozen=True)
class CacheKeys:
    """Each stage is keyed on what it reads, so changing a gate threshold does not retrain."""

    train: str
    evaluate: str
    run: str  # the whole run: a version carrying it means there is nothing to do


def cache_keys(md5: str, p: Params, code: str, lock: str) -> CacheKeys:
    train = provenance.key(md5, p.data, p.split, p.training, code, lock)
    evaluate = provenance.key(train, p.evaluation)
    return CacheKeys(train, evaluate, provenance.key(evaluate, p.validation, p.registry))


def validation_key(md5: str, p: Params, code: str, champion_version: str | None, drift_expected: bool) -> str:
    """Validation reads the champion's reference, and a drift retraining expects drift."""
    return provenance.key(md5, p.data, p.validation, code, champion_version or "-", str(drift_expected))


def search_key(trail: Lineage, p: Params) -> str:
    """What every trial's score depends on besides its own values: the data, the columns and
    split, the estimator's other parameters, the seed, the folds, the metric, code and locks.
    Not the trial count or the batch: a longer search reuses the trials it shares."""
    cfg = p.training.search
    return provenance.key(trail.md5, p.data, p.split, p.training.estimator, str(p.training.seed), str(cfg.folds),
                          p.evaluation.primary_metric, trail.code, trail.lock)


@dataclass(frozen=True)
class Lineage:
    """Where a training run's model comes from: what its run and version are tagged with."""

    model: str
    reason: str
    data: str  # the params' data path
    md5: str  # DVC md5 of the data
    commit: str
    params_hash: str
    code: str
    lock: str
    keys: CacheKeys
    flow_run_id: str = "-"
    drift_summary: str | None = None
    overrides: tuple[str, ...] = ()  # KEY=VALUE changes to the params file for this run (a check loosened on purpose)
    split: dict = field(default_factory=dict)  # set once the data is split: the champion's comparison reads it

    def tags(self) -> dict[str, str]:
        return {REASON_TAG: self.reason, GIT_COMMIT_TAG: self.commit, DVC_MD5_TAG: self.md5,
                PARAMS_HASH_TAG: self.params_hash, CODE_HASH_TAG: self.code,
                LOCK_HASH_TAG: self.lock, CACHE_KEY_TAG: self.keys.run,
                FLOW_RUN_TAG: self.flow_run_id,
                **({DRIFT_SUMMARY_TAG: self.drift_summary[:4000]} if self.drift_summary else {}),
                **({OVERRIDES_TAG: json.dumps(list(self.overrides))[:4000]} if self.overrides else {}),
                **({SPLIT_TAG: json.dumps(self.split, sort_keys=True)} if self.split else {})}

    def facts(self) -> dict[str, str]:
        return {"model": self.model, "reason": self.reason, "data": f"{self.data} (DVC md5 {self.md5})",
                "git commit": self.commit, "params hash": self.params_hash, "code hash": self.code,
                "uv.lock hash": self.lock, "Prefect flow run": self.flow_run_id,
                **({"overrides (this run only)": ", ".join(f"`{o}`" for o in self.overrides)}
                   if self.overrides else {})}

    def with_split(self, split: dict) -> Lineage:
        return dataclasses.replace(self, split=split)


def checkout(root: Path, expected_commit: str | None) -> str:
    """The project's git commit; PipelineFailure when it is not the one this run was asked to train."""
    commit = provenance.git_commit(root)
    if expected_commit and not commit.startswith(expected_commit):
        raise PipelineFailure("checkout", f"the project at {root} is at commit {commit}, but this run was asked to "
                              f"train {expected_commit}: update that checkout (git pull) where the flow runs. "
                              "Nothing was trained or registered.")
    return commit


def lineage(root: Path, p: Params, md5: str, commit: str, reason: str, flow_run_id: str = "-",
            drift_summary: str | None = None, overrides: list[str] | None = None) -> Lineage:
    code, lock = provenance.code_hash(), provenance.lock_hash(root)
    user = [d._source for d in p.data.derived if d.kind == "custom"]
    if p.training.estimator.kind == "custom":
        user.append(p.training.estimator._source)
    if user:  # the project's own feature code is training code too: a change to it retrains
        code = provenance.key(code, *user)[:16]
    return Lineage(p.registry.model_name, reason, p.data.path, md5, commit, p.digest(), code, lock,
                   cache_keys(md5, p, code, lock), flow_run_id, drift_summary, tuple(overrides or ()))


def trained_before(store: MlflowStore, keys: CacheKeys) -> VersionInfo | None:
    """The version a run with the same data, params, code and dependencies registered."""
    return store.find_version(CACHE_KEY_TAG, keys.run)


@dataclass
class Champion:
    info: VersionInfo
    model: object
    reference: pd.DataFrame | None

    @property
    def split(self) -> dict:
        return json.loads(self.info.tags.get(SPLIT_TAG, "{}"))

    @property
    def md5(self) -> str | None:
        """The DVC md5 of the data it was trained on."""
        return self.info.tags.get(DVC_MD5_TAG)


def load_champion(store: MlflowStore) -> Champion | None:
    """The champion, or None only when the registry says there is none (RegistryUnreachable
    otherwise: training must not take silence for "no champion" and register a first one)."""
    info = store.version_by_alias(CHAMPION)
    if info is None:
        return None
    return Champion(info, store.load_model(info), store.load_reference(info))


def open_run(store: MlflowStore, trail: Lineage, champion_version: str | None) -> str:
    return store.start_run(f"train-{trail.model}",
                           tags={**trail.tags(), CHAMPION_VERSION_TAG: champion_version or "none"})


def flat_params(p: Params) -> dict[str, str]:
    """The run's params as MLflow shows them: the estimator's kind, its class or factory, early
    stopping, and each parameter the estimator is built with (flat keys and `params` alike)."""
    est = p.training.estimator
    out: dict = {"estimator.kind": est.kind, **{f"estimator.{k}": v for k, v in est.estimator_params().items()}}
    for name, key in (("class_", "class"), ("factory", "factory"), ("preprocessing", "preprocessing")):
        if hasattr(est, name):
            out[f"estimator.{key}"] = getattr(est, name)
    if getattr(est, "early_stopping", None):
        out.update({"estimator.early_stopping.rounds": est.early_stopping.rounds,
                    "estimator.early_stopping.validation_share": est.early_stopping.validation_share})
    out.update({"seed": p.training.seed, "split.method": p.split.method, "split.test_size": p.split.test_size,
                "task": p.data.task, "target": p.data.target, "features": len(p.data.features),
                "decision_threshold": p.evaluation.decision_threshold})
    return {k: str(v) for k, v in out.items()}


def log_inputs(store: MlflowStore, run_id: str, p: Params, df: pd.DataFrame, source: str, md5: str) -> None:
    """Params and the dataset input (digest = DVC md5)."""
    store.log(run_id, params=flat_params(p))
    store.log_dataset(run_id, df, source, Path(p.data.path).stem, md5, p.data.target, "training")


def log_validation(store: MlflowStore, run_id: str, markdown: str, drift_html: str) -> None:
    store.log_text(run_id, markdown, "validation/report.md")
    if drift_html:
        store.log_text(run_id, drift_html, "validation/drift_report.html")


def log_split(store: MlflowStore, run_id: str, trail: Lineage) -> None:
    store.log(run_id, tags={SPLIT_TAG: trail.tags()[SPLIT_TAG]})


def log_scores(store: MlflowStore, run_id: str, ev: Evaluation, score: ChampionScore | None,
               fitted: dict[str, float] | None = None) -> None:
    """The challenger's holdout metrics, the champion's on the same rows, the paired interval, the
    fairness gaps, and what the fit decided (`fitted`: the rounds early stopping kept)."""
    comparison = score.comparison if score else None
    store.log(run_id, metrics={**(fitted or {}), **{f"holdout_{k}": v for k, v in ev.metrics.items()},
                               **{f"champion_{k}": v for k, v in (score.metrics if score else {}).items()},
                               **({"delta_ci_low": comparison.ci_low, "delta_ci_high": comparison.ci_high}
                                  if comparison else {}),
                               **{f"fairness_gap_{s.attribute}": s.gap for s in ev.slices}})


def reject(store: MlflowStore, run_id: str, markdown: str) -> None:
    store.log(run_id, tags={OUTCOME_TAG: "rejected"})
    store.log_text(run_id, markdown, "report.md")


def register(store: MlflowStore, run_id: str, model, train_df: pd.DataFrame, reference: pd.DataFrame,
             p: Params, tags: dict[str, str], alias: str, description: str, calibrator=None) -> VersionInfo:
    """The reference sample, the calibrator (beside the model, not in it) and the model (with a
    five-row input example) logged to the run, then a version created and `alias` pointed at it,
    or the registry left as it was."""
    example = frames.features(train_df.head(5), p.data)
    store.log_frame(run_id, reference, "reference/reference.parquet")
    if calibrator is not None:
        calibrators.log(store, run_id, calibrator)
    uri = store.log_model(run_id, model, example, model.predict(example), training.code_files(p))
    # @challenger is rollout state: it moves under the rollout lease, or after the rollout in
    # progress ends (the version is then tagged driftline.awaiting_rollout).
    point = rollout_state.offer_challenger if alias == CHALLENGER else None
    return store.register(uri, run_id, tags, alias, description, point)


def record_registered(store: MlflowStore, run_id: str, version: str, markdown: str) -> None:
    store.log(run_id, tags={OUTCOME_TAG: "registered", VERSION_TAG: version})
    store.log_text(run_id, markdown, "report.md")
    store.finish(run_id)


def close_failed(store: MlflowStore, run_id: str, outcome: str | None) -> None:
    if outcome:
        store.log(run_id, tags={OUTCOME_TAG: outcome})
    store.finish(run_id, "FAILED")
