"""Every `driftline.*` name that leaves the process, in one place: the tags driftline writes in
MLflow (on the registered model, its versions and its runs) and the Prefect events it emits.
Users' automations, dashboards and searches match on these strings: changing one is a breaking
change, and its old value must be read (or emitted) beside the new one for a release.

Times (the `*_at` tags) are written as ISO 8601 UTC (`stamp`) and read with `when`, which also
takes the epoch seconds (`1796621584.918`) that registries written before hold."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# -- the registered model: rollout and monitor state -------------------------------------------
STRATEGY_TAG = "driftline.rollout.strategy"  # none | canary | shadow | blue-green
WEIGHT_TAG = "driftline.rollout.weight"  # challenger share of traffic, 0..1
LAST_DRIFT_TAG = "driftline.last_drift_event_at"  # the cooldown reads it
# When the monitor last completed a check: the model servers expose it, and Prometheus alerts
# when it grows old (a broken monitor is silent otherwise).
CHECK_TAG = "driftline.last_drift_check_at"
# When the last drift retraining that reached a verdict started: a drift event older than that
# has been answered.
RETRAIN_TAG = "driftline.last_drift_retrain_started_at"
# The monitor's last performance verdict (JSON: the primary metric estimated and realized, the
# limit, the label coverage, whether it declined, the newest estimation error): the model servers
# expose it on /metrics, and Prometheus alerts on it.
PERFORMANCE_TAG = "driftline.performance"

# -- a lease (a registered model of its own, `<model>.lease.<name>`): its tags are LEASE_TAG and
# LEASE_TAG + ".owner", ".token", ".purpose", ".host", ".acquired_at", ".expires_at", ".ttl_seconds"
LEASE_TAG = "driftline.adapters.lease"  # the module's old path, kept: existing leases carry it

# -- a model version --------------------------------------------------------------------------
AWAITING_TAG = "driftline.awaiting_rollout"  # registered during a rollout: @challenger once it ends
GATES_TAG = "driftline.gates"  # "passed": training's gates passed for it
FORCED_TAG = "driftline.forced"  # rolled out although its gates did not pass: by whom, when

# -- a training run (most are copied onto the version it registers) ---------------------------
REASON_TAG = "driftline.reason"  # manual, schedule, drift, ci
GIT_COMMIT_TAG = "driftline.git_commit"
DVC_MD5_TAG = "driftline.dvc_md5"
PARAMS_HASH_TAG = "driftline.params_hash"
CODE_HASH_TAG = "driftline.code_hash"
LOCK_HASH_TAG = "driftline.uv_lock_hash"
CACHE_KEY_TAG = "driftline.cache_key"
FLOW_RUN_TAG = "driftline.flow_run_id"
DRIFT_SUMMARY_TAG = "driftline.drift_summary"
OVERRIDES_TAG = "driftline.overrides"  # the run's KEY=VALUE changes to the params file (a check loosened on purpose)
SPLIT_TAG = "driftline.split"
CHAMPION_VERSION_TAG = "driftline.champion_version"
OUTCOME_TAG = "driftline.outcome"  # registered, rejected, or how it failed
VERSION_TAG = "driftline.version"  # the version a training run registered, or a monitor run judged
# A distributed fit (training.distributed): the cluster shape it is reproducible for, the champion
# version a warm start continued from, and the checkpoint it resumed from (run id and round).
CLUSTER_SHAPE_TAG = "driftline.cluster_shape"
WARM_START_TAG = "driftline.warm_start_from"
RESUMED_TAG = "driftline.resumed_from"
# A training run's checkpoints: the key (data md5, config, cluster shape), the rounds held, which of
# two artifact slots holds them (written alternately, the tag moved after the write), and "true" once
# the fit ended.
CHECKPOINT_KEY_TAG = "driftline.checkpoint.key"
CHECKPOINT_ROUNDS_TAG = "driftline.checkpoint.rounds"
CHECKPOINT_SLOT_TAG = "driftline.checkpoint.slot"
CHECKPOINT_DONE_TAG = "driftline.checkpoint.done"

# -- other runs: the monitor's, the search's trials, the alias history -------------------------
KIND_TAG = "driftline.kind"  # monitor | trial
DECISION_TAG = "driftline.decision"  # the monitor's verdict
WINDOW_FROM_TAG = "driftline.window_from"  # the first and last log time of the rows a monitor run judged:
WINDOW_TO_TAG = "driftline.window_to"  # labels that arrive later are joined to that window's rows
RULES_TAG = "driftline.rules"  # the rules that made the monitor's drift a retraining (comma-separated)
REALIZED_AT_TAG = "driftline.realized_at"  # when labels last re-judged that window (realized, estimation error)
SEARCH_KEY = "driftline.search_key"
TRIAL_KEY = "driftline.trial_key"
TRIAL_TAG = "driftline.trial"
WORKER_TAG = "driftline.worker"
CACHED_TAG = "driftline.cached"
NOTE_TAG = "driftline.note"
MODEL_TAG = "driftline.model"  # one alias change per run of the history experiment:
ALIAS_TAG = "driftline.alias"
FROM_TAG = "driftline.from"
TO_TAG = "driftline.to"

# -- Prefect events: the tasks emit them, the deployments' triggers expect them, and users'
# automations match on them ---------------------------------------------------------------------
DRIFT_DETECTED = "driftline.drift.detected"
CHALLENGER_REGISTERED = "driftline.challenger.registered"
ROLLED_BACK = "driftline.rollout.rolled_back"
# The name before "rollout" meant the model side everywhere (a deployment is a Prefect one). Still
# emitted beside the new one for one release, so automations matching it keep firing.
ROLLED_BACK_DEPRECATED = "driftline.deployment.rolled_back"
AUTO_DEPLOY_LABEL = "driftline.auto_deploy"  # on the challenger event's resource: the auto-deploy trigger matches it
EVENTS = {"DRIFT_DETECTED": DRIFT_DETECTED, "CHALLENGER_REGISTERED": CHALLENGER_REGISTERED,
          "ROLLED_BACK": ROLLED_BACK, "ROLLED_BACK_DEPRECATED": ROLLED_BACK_DEPRECATED}  # what the docs list


def model_resource(model: str) -> str:
    """The Prefect resource id of a registered model, on every event about it."""
    return f"driftline.model.{model}"


def rolled_back_payload(model: str, version: str, champion: str | None, reason: str) -> dict:
    """The rolled-back event's payload: the rollout emits it, notifications and users' automations read it."""
    return {"model": model, "version": version, "champion": champion, "reason": reason}


def stamp(epoch_seconds: float) -> str:
    """A time tag's text: ISO 8601 in UTC, to the millisecond (`2026-12-07T07:21:42.918Z`), which
    the MLflow UI shows as it is."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A time stamp more than this far ahead of the reader's clock is ignored: a stamp from the future
# (a wrong clock, or a forged tag) would pin a lease, silence drift or mute a stale-check alert.
FUTURE_SKEW_SECONDS = 300.0


def past(t: float | None, now: float) -> float | None:
    """`t`, unless it lies more than FUTURE_SKEW_SECONDS ahead of `now` (then None)."""
    return None if t is not None and t > now + FUTURE_SKEW_SECONDS else t


def when(text: str | None) -> float | None:
    """A time tag as epoch seconds: ISO 8601 (a time without a zone is UTC) or the epoch seconds
    driftline wrote before; None when absent or unreadable."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return value if math.isfinite(value) else None
