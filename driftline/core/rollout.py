"""Rollout analysis: is the challenger at least as good as the champion on live traffic?

Pure functions over a window of the prediction log and the feedback log. The unit of evidence is
the request, not the row: one anonymous request may carry thousands of records, so `min_requests`
and the error rate count requests, and a request weighs at most ROWS_PER_REQUEST rows in the score
comparison and the shadow's agreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftline.config import RolloutConfig
from driftline.core.evaluation import row_scores
from driftline.core.monitoring import join_labels
from driftline.core.validation import Check

# A log row's status: "ok" (answered); ERROR, the version failed where the champion answered the
# same rows (evidence against it); INPUT_ERROR, it failed and the champion did not answer those
# rows either (failed on them too, or was at capacity): the input's fault, evidence about neither.
OK, ERROR, INPUT_ERROR = "ok", "error", "input_error"
# A request weighs at most this many rows in the score distribution and the shadow's agreement: at
# min_requests=200 one 10,000-record request was the distribution; capped, it is at most 10 rows
# beside ~200 other requests' (5%).
ROWS_PER_REQUEST = 10


@dataclass(frozen=True)
class LiveAccuracy:
    """Live accuracy of both variants on their labelled rows, for the step's picture: the drop's
    95% lower bound is None until both have `min_labels`."""

    challenger: float
    challenger_labels: int
    champion: float
    champion_labels: int
    min_labels: int
    max_drop: float
    drop_bound: float | None = None


@dataclass(frozen=True)
class Analysis:
    ready: bool  # enough challenger traffic to judge
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # requests per arm, and the arm's unjudged ones
    evidence: object = field(default=None, repr=False, compare=False)  # the window's rows, for its picture
    accuracy: LiveAccuracy | None = None
    top_client: float | None = None  # the largest share of the window's requests one client key sent

    @property
    def passed(self) -> bool:
        return self.ready and all(c.passed for c in self.checks)

    def traffic(self) -> str:
        """What the step was judged on, in requests; "" for a step judged on other evidence."""
        c = self.counts
        arm = "shadow" if "shadow" in c else "challenger"
        if "champion" not in c:
            return ""
        text = f"{c.get(arm, 0):,} {arm} and {c['champion']:,} champion requests"
        if c.get("input_errors"):
            text += f", {c['input_errors']:,} {arm} requests not judged (the champion did not answer them either)"
        if self.top_client is not None:
            text += f"; the top client sent {self.top_client:.0%} of the window's requests"
        return text

    def summary(self) -> str:
        failed = [c.detail for c in self.checks if not c.passed]
        if not self.ready:
            return f"not enough traffic yet ({self.counts})"
        traffic = f" ({self.traffic()})" if self.traffic() else ""
        return ("analysis passed: " + "; ".join(c.detail for c in self.checks) if not failed
                else "analysis failed: " + "; ".join(failed)) + traffic


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected`, on expected's quantile bins."""
    if len(expected) == 0 or len(actual) == 0:
        return 0.0
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    e = np.histogram(np.clip(expected, edges[0], edges[-1]), edges)[0] / len(expected)
    a = np.histogram(np.clip(actual, edges[0], edges[-1]), edges)[0] / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_sampling_floor(n: int, m: int, bins: int = 10) -> float:
    """The expected PSI of two samples of sizes n and m drawn from the same distribution."""
    return (bins - 1) * (1 / max(n, 1) + 1 / max(m, 1))


def requests(rows: pd.DataFrame) -> int:
    return int(rows["request_id"].nunique()) if len(rows) else 0


def _error_rate(rows: pd.DataFrame) -> float:
    """The share of requests that failed (a failed request logs an error row per record)."""
    failed = requests(rows[rows["status"] == ERROR])
    return failed / requests(rows) if len(rows) else 0.0


def _p95(rows: pd.DataFrame) -> float:
    # One latency per request (each of its rows carries it): a big request is one sample, not many.
    ok = rows[rows["status"] == OK].drop_duplicates("request_id")
    return float(np.percentile(ok["latency_ms"], 95)) if len(ok) else 0.0


def capped(rows: pd.DataFrame, most: int = ROWS_PER_REQUEST) -> pd.DataFrame:
    """At most `most` rows of each request (its first, in log order: by record index)."""
    return rows.groupby("request_id", sort=False).head(most) if len(rows) else rows


def top_client(window: pd.DataFrame) -> float | None:
    """The largest share of the window's requests (both arms) that one client key sent; None when
    the log has no client key (an older server, or no peer address known)."""
    if "client_key" not in window or not window["client_key"].notna().any():
        return None
    keyed = window.dropna(subset=["client_key"]).drop_duplicates("request_id")
    return float(keyed["client_key"].value_counts().iloc[0] / len(keyed))


def _accuracy(rows: pd.DataFrame, feedback: pd.DataFrame) -> tuple[float, int]:
    ok = rows[rows["status"] == OK]
    if feedback.empty or ok.empty:
        return float("nan"), 0
    joined = join_labels(ok, feedback)
    if joined.empty:
        return float("nan"), 0
    truth = joined["label"].map(json.loads).astype(str)
    said = joined["prediction"].map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return float((truth.to_numpy() == said.to_numpy()).mean()), len(joined)


def analyze(window: pd.DataFrame, feedback: pd.DataFrame, cfg: RolloutConfig, shadow: bool = False) -> Analysis:
    """Judge the challenger (variant `challenger`, or `shadow`) against the champion in `window`."""
    variant = "shadow" if shadow else "challenger"
    # Rows no model answered are evidence about neither (INPUT_ERROR): counted apart, judged not.
    judged = window[window["status"] != INPUT_ERROR] if len(window) else window
    champ = judged[judged["variant"] == "champion"] if len(judged) else judged
    chal = judged[judged["variant"] == variant] if len(judged) else judged
    unjudged = requests(window[(window["status"] == INPUT_ERROR) & (window["variant"] == variant)]) if len(window) \
        else 0
    counts = {"champion": requests(champ), variant: requests(chal), "input_errors": unjudged}
    top = top_client(window) if len(window) else None
    if counts[variant] < cfg.min_requests or counts["champion"] == 0:
        return Analysis(False, [], counts, top_client=top)
    checks = []
    err = _error_rate(chal)
    checks.append(Check("errors", err <= cfg.max_error_rate,
                        f"challenger error rate {err:.2%} (at most {cfg.max_error_rate:.2%})"))
    ratio = _p95(chal) / max(_p95(champ), 1e-9)
    checks.append(Check("latency", ratio <= cfg.max_latency_p95_ratio,
                        f"latency p95 {_p95(chal):.1f} ms vs champion {_p95(champ):.1f} ms "
                        f"(ratio {ratio:.2f}, at most {cfg.max_latency_p95_ratio})"))
    ok_chal, ok_champ = capped(chal[chal["status"] == OK]), capped(champ[champ["status"] == OK])
    value = psi(ok_champ["score"].to_numpy(float), ok_chal["score"].to_numpy(float))
    # Two samples of one distribution still give a PSI of about (bins - 1) * (1/n + 1/m): at 100
    # challenger requests that alone is ~0.1. Judge the excess over that sampling floor.
    floor = psi_sampling_floor(len(ok_champ), len(ok_chal))
    checks.append(Check("score distribution", value - floor <= cfg.max_score_psi,
                        f"score PSI {value:.3f} - sampling floor {floor:.3f} (at most {cfg.max_score_psi})"))
    if shadow:
        # A request carries several records: pair each record with its own mirror, not with every
        # record of the request (a 10-record request would make 100 pairs, 90 of them strangers).
        keys = ["request_id", "record_index"] if "record_index" in ok_chal and "record_index" in ok_champ \
            else ["request_id"]
        pairs = ok_chal.merge(ok_champ, on=keys, suffixes=("_c", "_p"))
        agree = float((pairs["prediction_c"] == pairs["prediction_p"]).mean()) if len(pairs) else 0.0
        checks.append(Check("agreement", agree >= cfg.min_agreement,
                            f"agreement {agree:.1%} on {len(pairs)} mirrored requests "
                            f"(at least {cfg.min_agreement:.0%})"))
    # Labels come only from the label credential: every labelled row counts, whatever its request's size.
    acc_c, n_c = _accuracy(chal, feedback)
    acc_p, n_p = _accuracy(champ, feedback)
    surely = None
    if min(n_c, n_p) >= cfg.min_labels:
        # Fail only when the drop is beyond the tolerance with 95% confidence (one-sided): on a
        # few hundred labels, two equal models differ by several points by chance alone.
        se = np.sqrt(acc_c * (1 - acc_c) / n_c + acc_p * (1 - acc_p) / n_p)
        surely = (acc_p - acc_c) - 1.645 * se
        checks.append(Check("accuracy", surely <= cfg.max_accuracy_drop,
                            f"live accuracy {acc_c:.3f} vs champion {acc_p:.3f} on {n_c}/{n_p} labels: "
                            f"the drop is at least {surely:+.3f} with 95% confidence "
                            f"(at most {cfg.max_accuracy_drop})"))
    live = LiveAccuracy(acc_c, n_c, acc_p, n_p, cfg.min_labels, cfg.max_accuracy_drop,
                        None if surely is None else float(surely))
    return Analysis(True, checks, counts, accuracy=live, top_client=top)


def judge_smoke(version: str, answers: list[tuple[int, dict]], expected: list, expected_scores: list[float] | None,
                tolerance: float = 1e-6) -> Analysis:
    """Blue-green's smoke test: every request answered, by the staged version, with the answers
    the registered model gives offline for the same rows (a different environment, a missing
    dependency or a wrong input conversion on the server shows up here, before the switch)."""
    ok = [body for status, body in answers if status == 200]
    failed = [(status, body) for status, body in answers if status != 200]
    first = f"; first failure: HTTP {failed[0][0]} {str(failed[0][1].get('detail', ''))[:200]}" if failed else ""
    wrong_version = sorted({str(b.get("model_version")) for b in ok if str(b.get("model_version")) != version})
    same = 0
    for i, (status, body) in enumerate(answers):
        if status != 200:
            continue
        label_ok = body["predictions"][0] == expected[i]
        score_ok = True
        if expected_scores is not None and body.get("probabilities"):
            score_ok = abs(_score_of(body["probabilities"][0]) - expected_scores[i]) <= tolerance
        same += label_ok and score_ok
    checks = [
        Check("answered", not failed, f"{len(ok)}/{len(answers)} smoke requests answered 200{first}"),
        Check("version", not wrong_version, f"answered by version {version}" if not wrong_version
              else f"answered by {', '.join(wrong_version)}, expected {version}"),
        Check("offline agreement", bool(ok) and same == len(ok),
              f"{same}/{len(ok)} answers equal the registered model's offline predictions"),
    ]
    return Analysis(ready=True, checks=checks, counts={"smoke": len(answers)})


def _score_of(probabilities: dict[str, float]) -> float:
    # `row_scores` on one answer, as the server scored it: it lists classes in the model's order.
    return float(row_scores(np.array([list(probabilities.values())]))[0])


def step_name(mode: str, weight: float) -> str:
    """What the report and the log call a step."""
    return {"canary": f"canary {weight:.0%}", "blue-green": "smoke test"}.get(mode, mode)


def promotion_verdict(version: str, champion: str | None) -> str:
    return f"promoted version {version} to @champion" + (f"; @previous is version {champion}" if champion else "")
