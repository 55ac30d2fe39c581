"""The drift decision: is live traffic different enough from the training reference to retrain?

Plain functions over the per-column results, the live labels and the clock; the flow reads
the log and the registry, this decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftline.config import MonitoringConfig, Params, names_by_type
from driftline.core import drift, estimation, trigger, window_performance
from driftline.core.drift import ColumnDrift

# What the monitor reads: live answers only. Smoke rows are the reference replayed by a
# blue-green check, shadow rows duplicate requests already counted.
LIVE_VARIANTS = ("champion", "challenger")
PREDICTION = "prediction"
LOG_COLUMNS = ["request_id", "record_index", "timestamp", "variant", "status", "model_version", "prediction", "score"]
ROW_KEY = ["request_id", "record_index"]  # a logged row; a label names one


@dataclass(frozen=True)
class Performance:
    labelled: int
    live_accuracy: float | None
    upper_bound: float | None
    expected_accuracy: float | None
    declined: bool
    note: str


@dataclass(frozen=True)
class Decision:
    status: str  # drift | no_drift | too_little_data | cooldown
    drift_share: float
    drifted_columns: list[str]
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    fired: list[str] = field(default_factory=list)  # the rules that made it drift (see core.trigger)

    @property
    def drift(self) -> bool:
        return self.status == "drift"


def live_rows(log: pd.DataFrame) -> pd.DataFrame:
    if log.empty or "variant" not in log.columns:
        return log
    ok = log["variant"].isin(LIVE_VARIANTS)
    if "status" in log.columns:
        ok &= log["status"] == "ok"
    return log[ok]


def window(log: pd.DataFrame, since: pd.Timestamp, last_rows: int | None) -> pd.DataFrame:
    """The rows logged since `since`, and of those only the newest `last_rows` when set."""
    if log.empty:
        return log
    # The log's stamps are one ISO format in UTC: as text they sort like time, and comparing
    # text skips parsing a million of them.
    out = log[log["timestamp"].astype(str) >= since.tz_convert("UTC").isoformat()]
    if last_rows is not None and len(out) > last_rows:
        stamps = pd.to_datetime(out["timestamp"], utc=True, format="ISO8601")
        out = out.iloc[np.argsort(stamps.to_numpy(), kind="stable")[-last_rows:]]
    return out


def wilson_upper(successes: int, n: int, z: float = 1.645) -> float:
    """One-sided 95% upper bound of a proportion."""
    return estimation.wilson(successes, n, z)[1]


def _newest(feedback: pd.DataFrame) -> pd.DataFrame:
    """One label per row key: the newest by the server's timestamp, whatever order the files come in."""
    feedback = _indexed(feedback)
    if "timestamp" in feedback.columns:
        # One ISO format in UTC: as text they sort like time.
        feedback = feedback.sort_values("timestamp", kind="stable")
    return feedback.drop_duplicates(ROW_KEY, keep="last")[[*ROW_KEY, "label"]]


def join_labels(rows: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """`rows` that have a label, with it in a `label` column. A label names one row, (request_id,
    record_index); of two labels for a row the newer by the server's timestamp wins, whatever
    order the log's files come in. Rows and labels logged before record indices existed were
    single-record requests: their index is 0."""
    return _indexed(rows).merge(_newest(feedback), on=ROW_KEY, how="inner")


def labels_of(rows: pd.DataFrame, feedback: pd.DataFrame) -> pd.Series:
    """Each row's label (JSON text), None where none came back, in the order of `rows` (as
    join_labels joins them)."""
    if feedback.empty or not len(rows) or "request_id" not in rows.columns:
        return pd.Series([None] * len(rows), dtype=object)
    keys = _indexed(rows[[c for c in ROW_KEY if c in rows.columns]])
    keys["request_id"] = keys["request_id"].astype(object)
    labels = _newest(feedback).astype({"request_id": object})
    merged = keys.merge(labels, on=ROW_KEY, how="left")  # a left merge keeps the left order
    return merged["label"].astype(object).where(merged["label"].notna(), None).reset_index(drop=True)


def _indexed(frame: pd.DataFrame) -> pd.DataFrame:
    index = frame["record_index"] if "record_index" in frame.columns else pd.Series(0, index=frame.index)
    return frame.assign(record_index=index.fillna(0).astype("int64"))


def performance(rows: pd.DataFrame, feedback: pd.DataFrame, expected_accuracy: float | None,
                cfg: MonitoringConfig, labels: pd.Series | None = None) -> Performance:
    """Live accuracy of the answers whose labels came back, against the holdout accuracy.
    `labels`: labels_of(rows, feedback), when the caller has it already."""
    if rows.empty or PREDICTION not in rows.columns or (labels is None and feedback.empty):
        return Performance(0, None, None, expected_accuracy, False, "no labels yet")
    labels = labels_of(rows, feedback) if labels is None else labels
    has = labels.notna().to_numpy()
    n = int(has.sum())
    if n == 0:
        return Performance(0, None, None, expected_accuracy, False, "no labels yet")
    if n < cfg.min_labels:
        return Performance(n, None, None, expected_accuracy, False,
                           f"{n} labelled answers, fewer than monitoring.min_labels={cfg.min_labels}")
    truth = labels[has].map(json.loads)
    right = int(sum(str(a) == str(b) for a, b in zip(rows[PREDICTION].to_numpy()[has], truth, strict=True)))
    live, upper = right / n, wilson_upper(right, n)
    if expected_accuracy is None:
        return Performance(n, live, upper, None, False, "the model has no holdout accuracy to compare with")
    floor = expected_accuracy - cfg.max_accuracy_drop
    declined = upper < floor
    note = (f"live accuracy {live:.3f} on {n} labels (95% upper bound {upper:.3f}) against holdout "
            f"{expected_accuracy:.3f} - {cfg.max_accuracy_drop} = {floor:.3f}: "
            + ("declined" if declined else "holding"))
    return Performance(n, live, upper, expected_accuracy, declined, note)


def decide(columns: list[ColumnDrift], n_rows: int, perf: Performance, cfg: MonitoringConfig,
           hours_since_last: float | None, derived: frozenset[str] = frozenset(),
           rules: list[trigger.Rule] | tuple = ()) -> Decision:
    """Drift, no drift, too little data, or cooldown, with the reasons in words. The share is
    over the raw features: a derived one moves with the columns it reads, and counting it too
    would count their drift twice; it counts alone when monitoring.drift_columns names it.
    `rules` are the performance rules judged (trigger.rules); monitoring.trigger says which of
    them, and whether the features, make drift a retraining. Feature drift is reported either way."""
    features = [c for c in columns if c.column != PREDICTION and c.column not in derived]
    drifted = [c.column for c in columns if c.drifted]
    share = sum(c.drifted for c in features) / len(features) if features else 0.0
    if n_rows < cfg.min_rows:
        return Decision("too_little_data", share, drifted, [],
                        f"{n_rows} rows in the window, fewer than monitoring.min_rows={cfg.min_rows}: no verdict")
    moved = []
    if share >= cfg.drift_share:
        moved.append(f"{share:.0%} of features drifted (monitoring.drift_share={cfg.drift_share:.0%}): "
                     + ", ".join(c for c in drifted if c != PREDICTION))
    moved += [f"{c} drifted, and it alone counts (monitoring.drift_columns)"
              for c in cfg.drift_columns if c in drifted]
    reasons, fired, reported = [], [], []
    if moved and trigger.counts(cfg.trigger, "features"):
        reasons, fired = list(moved), ["features"]
    elif moved:
        reported.append("; ".join(moved) + f" (reported: monitoring.trigger={cfg.trigger} does not retrain on "
                        "features)")
    if cfg.trigger is None and perf.declined and cfg.retrain_on_decline:
        reasons.append("performance declined: " + perf.note)
        fired.append("realized_accuracy")
    for rule in rules:
        if rule.fired and trigger.counts(cfg.trigger, rule.name):
            reasons.append(f"{rule.name}: {rule.line}")
            fired.append(rule.name)
        else:
            reported.append(f"{rule.name}: {rule.line}")
    if reasons:
        message = "drift: " + "; ".join([*reasons, *reported])
        return recheck(Decision("drift", share, drifted, reasons, message, fired), hours_since_last, cfg)
    if cfg.trigger is None:
        head = (f"no drift: {share:.0%} of features drifted ({', '.join(drifted) or 'none'}), "
                f"below monitoring.drift_share={cfg.drift_share:.0%}; {perf.note}")
    else:
        head = f"no drift (monitoring.trigger={cfg.trigger})"
        if not moved:
            reported.append(f"{share:.0%} of features drifted ({', '.join(drifted) or 'none'})")
    return Decision("no_drift", share, drifted, [], "; ".join([head, *reported]))


def hours_since_last(now: float, versions_created: list[float], last_event: float | None) -> float | None:
    """Hours since the newest registered version (a retraining that produced a model) or the last
    drift event (a retraining that was asked for), whichever is later; None when neither exists.
    Times are epoch seconds."""
    stamps = [t for t in [*versions_created, last_event] if t is not None]
    return (now - max(stamps)) / 3600 if stamps else None


def recheck(decision: Decision, hours_since_last: float | None, cfg: MonitoringConfig) -> Decision:
    """A drift decision held against the cooldown: within `cooldown_hours` of the last retraining
    or drift event it becomes `cooldown`, with no event. The monitor asks again under its lease,
    with the tag read there, so that of two monitors racing on the same drift only one emits."""
    if not decision.drift or hours_since_last is None or hours_since_last >= cfg.cooldown_hours:
        return decision
    return Decision("cooldown", decision.drift_share, decision.drifted_columns, decision.reasons,
                    f"drift ({'; '.join(decision.reasons)}), but the last retraining or drift event was "
                    f"{hours_since_last:.2f} h ago, within monitoring.cooldown_hours={cfg.cooldown_hours}: no event",
                    decision.fired)


def answered_by(rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """The rows `version` answered: prediction drift and live accuracy are about the champion,
    its answers only (a rollout's challenger answers some of the window too)."""
    if not len(rows) or "model_version" not in rows.columns:
        return rows
    return rows[rows["model_version"].astype(str) == str(version)]


@dataclass(frozen=True)
class Assessment:
    rows: int
    columns: list[ColumnDrift]
    quality: list
    performance: Performance
    decision: Decision
    judged: window_performance.Judged | None = None  # the champion's estimated and realized performance
    rules: list[trigger.Rule] = field(default_factory=list)
    past: list = field(default_factory=list)  # past_windows.Rejudged: earlier windows judged on their labels
    holdout: dict[str, float] = field(default_factory=dict)  # the champion's holdout metrics


def assess(rows: pd.DataFrame, feedback: pd.DataFrame, reference: pd.DataFrame, p: Params,
           champion_version: str, expected_accuracy: float | None, hours_since_last: float | None,
           derive=None, scoring: window_performance.Scoring | None = None, past: list | tuple = ()) -> Assessment:
    """Every feature and the champion's score against the reference, the data quality, the live
    accuracy when labels came back, the champion's estimated and realized performance (with
    `scoring`), and the decision, in one pass over the window's live `rows`.
    `derive`: the champion's fitted derive step; its derived features are watched too. `past`: the
    earlier windows judged again on the labels that arrived since (past_windows.Rejudged)."""
    cfg = p.monitoring
    shared = [f for f in p.data.features if f.name in reference.columns and f.type != "datetime"]
    answered = answered_by(rows, champion_version)
    columns, quality_rows = [], []
    if len(rows):
        current = rows.reindex(columns=[f.name for f in shared])
        numeric, categorical = names_by_type(shared)
        columns = [drift.with_noise(c, reference[c.column], len(current), c.column in numeric)
                   for c in drift.scipy_data_drift(current, reference, numeric, categorical)]
        if "score" in answered.columns and PREDICTION in reference.columns and len(answered):
            columns.append(drift.column_drift(PREDICTION, reference[PREDICTION], answered["score"], True))
        quality_rows = drift.quality(current, reference, shared)
        columns += derived_drift(rows, reference, derive)
    labels = labels_of(answered, feedback)
    perf = performance(answered, feedback, expected_accuracy, cfg, labels)
    judged = None
    if scoring is not None and len(answered) and PREDICTION in answered.columns:
        judged = window_performance.judge(answered, labels, scoring, p.data.feature_names)
    rules = trigger.rules(cfg.trigger, judged, scoring, p.evaluation.primary_metric, cfg, past, champion_version)
    derived = frozenset(derive.specs_names()) if derive is not None else frozenset()
    decision = decide(columns, len(rows), perf, cfg, hours_since_last, derived, rules)
    return Assessment(len(rows), columns, quality_rows, perf, decision, judged, rules, list(past),
                      dict(scoring.holdout) if scoring is not None else {})


def derived_drift(rows: pd.DataFrame, reference: pd.DataFrame, derive) -> list[ColumnDrift]:
    """The derived features' drift, each computed by the champion's own derive step from the raw
    columns of the window and of the reference. Nothing when the champion derives none, or when
    the window lacks a column it reads (the log predates it)."""
    if derive is None or not len(rows):
        return []
    raw = list(derive.feature_names_in_)
    if not set(raw) <= set(rows.columns) or not set(raw) <= set(reference.columns):
        return []
    current, ref = derive.transform(_as_raw(rows[raw])), derive.transform(_as_raw(reference[raw]))
    return [drift.column_drift(name, ref[name], current[name], True) for name in derive.specs_names()]


def _as_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """Log categoricals (read as pandas categories) back to plain values, as a request holds them."""
    return frame.apply(lambda c: c.astype(object) if isinstance(c.dtype, pd.CategoricalDtype) else c)
