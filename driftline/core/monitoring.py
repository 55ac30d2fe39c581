"""The drift decision: is live traffic different enough from the training reference to retrain?

Plain functions over the per-column results, the live labels and the clock; the flow reads
the log and the registry, this decides.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftline.config import MonitoringConfig, Params, names_by_type
from driftline.core import drift
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
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def join_labels(rows: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """`rows` that have a label, with it in a `label` column. A label names one row, (request_id,
    record_index); of two labels for a row the newer by the server's timestamp wins, whatever
    order the log's files come in. Rows and labels logged before record indices existed were
    single-record requests: their index is 0."""
    rows, feedback = _indexed(rows), _indexed(feedback)
    if "timestamp" in feedback.columns:
        # One ISO format in UTC: as text they sort like time.
        feedback = feedback.sort_values("timestamp", kind="stable")
    labels = feedback.drop_duplicates(ROW_KEY, keep="last")[[*ROW_KEY, "label"]]
    return rows.merge(labels, on=ROW_KEY, how="inner")


def _indexed(frame: pd.DataFrame) -> pd.DataFrame:
    index = frame["record_index"] if "record_index" in frame.columns else pd.Series(0, index=frame.index)
    return frame.assign(record_index=index.fillna(0).astype("int64"))


def performance(rows: pd.DataFrame, feedback: pd.DataFrame, expected_accuracy: float | None,
                cfg: MonitoringConfig) -> Performance:
    """Live accuracy of the answers whose labels came back, against the holdout accuracy."""
    if feedback.empty or rows.empty or PREDICTION not in rows.columns:
        return Performance(0, None, None, expected_accuracy, False, "no labels yet")
    joined = join_labels(rows[[c for c in (*ROW_KEY, PREDICTION) if c in rows.columns]], feedback)
    n = len(joined)
    if n < cfg.min_labels:
        return Performance(n, None, None, expected_accuracy, False,
                           f"{n} labelled answers, fewer than monitoring.min_labels={cfg.min_labels}")
    truth = joined["label"].map(json.loads)
    right = int(sum(str(a) == str(b) for a, b in zip(joined[PREDICTION], truth, strict=True)))
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
           hours_since_last: float | None, derived: frozenset[str] = frozenset()) -> Decision:
    """Drift, no drift, too little data, or cooldown, with the reasons in words. The share is
    over the raw features: a derived one moves with the columns it reads, and counting it too
    would count their drift twice; it counts alone when monitoring.drift_columns names it."""
    features = [c for c in columns if c.column != PREDICTION and c.column not in derived]
    drifted = [c.column for c in columns if c.drifted]
    share = sum(c.drifted for c in features) / len(features) if features else 0.0
    if n_rows < cfg.min_rows:
        return Decision("too_little_data", share, drifted, [],
                        f"{n_rows} rows in the window, fewer than monitoring.min_rows={cfg.min_rows}: no verdict")
    reasons = []
    if share >= cfg.drift_share:
        reasons.append(f"{share:.0%} of features drifted (monitoring.drift_share={cfg.drift_share:.0%}): "
                       + ", ".join(c for c in drifted if c != PREDICTION))
    reasons += [f"{c} drifted, and it alone counts (monitoring.drift_columns)"
                for c in cfg.drift_columns if c in drifted]
    if perf.declined and cfg.retrain_on_decline:
        reasons.append("performance declined: " + perf.note)
    if not reasons:
        return Decision("no_drift", share, drifted, [],
                        f"no drift: {share:.0%} of features drifted ({', '.join(drifted) or 'none'}), "
                        f"below monitoring.drift_share={cfg.drift_share:.0%}; {perf.note}")
    return recheck(Decision("drift", share, drifted, reasons, "drift: " + "; ".join(reasons)), hours_since_last, cfg)


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
                    f"{hours_since_last:.2f} h ago, within monitoring.cooldown_hours={cfg.cooldown_hours}: no event")


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


def assess(rows: pd.DataFrame, feedback: pd.DataFrame, reference: pd.DataFrame, p: Params,
           champion_version: str, expected_accuracy: float | None, hours_since_last: float | None,
           derive=None) -> Assessment:
    """Every feature and the champion's score against the reference, the data quality, the live
    accuracy when labels came back, and the decision. `rows` are the window's live rows.
    `derive`: the champion's fitted derive step; its derived features are watched too."""
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
    perf = performance(answered, feedback, expected_accuracy, cfg)
    derived = frozenset(derive.specs_names()) if derive is not None else frozenset()
    return Assessment(len(rows), columns, quality_rows, perf,
                      decide(columns, len(rows), perf, cfg, hours_since_last, derived))


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
