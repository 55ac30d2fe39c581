"""Derived-features benchmark: what computing `data.derived` inside the model costs, in one run.

    make bench-features     # or: uv run python -m benchmarks.features --rows 200000

1. Training (fit of the whole Pipeline on the training part), the named baseline first: the same
   derived columns precomputed outside the model (not timed) and declared as plain numeric
   features, against `data.derived` computed inside the model (target encoding cross-fitted).
2. Serving, per request: one-row `predict_proba` of the model with the derive step against the
   baseline model (the columns precomputed by the client), 2,000 requests each, in this process
   (the server adds the same HTTP cost to both).
Each timing is the median of three runs; OMP_NUM_THREADS is left as the machine has it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from benchmarks import results

DERIVED = [
    {"kind": "ratio", "name": "loan_to_income", "numerator": "loan_amount", "denominator": "annual_income"},
    {"kind": "difference", "name": "score_minus_age", "left": "credit_score", "right": "age"},
    {"kind": "log1p", "name": "log_income", "column": "annual_income"},
    {"kind": "clip", "name": "dti_clipped", "column": "debt_to_income", "quantiles": [0.05, 0.95]},
    {"kind": "quantile_bins", "name": "score_band", "column": "credit_score", "bins": 4},
    {"kind": "interaction", "name": "amount_x_rate", "columns": ["loan_amount", "interest_rate"]},
    {"kind": "frequency", "name": "purpose_share", "column": "loan_purpose"},
    {"kind": "target_encoding", "name": "region_risk", "column": "region"},
    {"kind": "date_part", "name": "applied_month", "column": "application_date", "part": "month"},
]


def _median(fn, runs: int = 3, rounds: list[float] | None = None) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    if rounds is not None:
        rounds.extend(times)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    import yaml

    from driftline.config import load_params
    from driftline.core import demo_data, features, frames, training

    with open("params.yaml") as f:
        raw = yaml.safe_load(f)["data"]["features"]
    with_date = "data.features=" + json.dumps([*raw, {"name": "application_date", "type": "datetime"}])
    inside = load_params("params.yaml", [with_date, "data.derived=" + json.dumps(DERIVED)])
    df = demo_data.generate(args.rows, 7)
    train = training.split(df, inside).train
    # The baseline: the derived columns computed once outside (what a team precomputes), then
    # declared as numeric features of a model with no derive step.
    step = features.from_params(inside)
    extra = step.fit_transform(frames.features(train, inside.data), frames.target(train, inside.data))
    names = [d["name"] for d in DERIVED]
    pre = train.assign(**{n: extra[n].to_numpy() for n in names})
    outside = load_params("params.yaml", ["data.derived=[]", "data.features=" + json.dumps(
        [*raw, *({"name": n, "type": "numeric", "max_null_rate": 1.0} for n in names)])])

    rounds: dict[str, list[float]] = {"fit, precomputed (baseline)": [], "fit, inside": [],
                                      "2,000 predicts, precomputed (baseline)": [], "2,000 predicts, inside": []}
    fit_outside = _median(lambda: training.train(pre, outside), rounds=rounds["fit, precomputed (baseline)"])
    fit_inside = _median(lambda: training.train(train, inside), rounds=rounds["fit, inside"])
    m_outside, m_inside = training.train(pre, outside), training.train(train, inside)
    one_out = frames.features(pre.head(1), outside.data)
    one_in = frames.features(train.head(1), inside.data)

    def requests(model, row):
        return lambda: [model.predict_proba(row) for _ in range(2000)]

    serve_outside = _median(requests(m_outside, one_out), rounds=rounds["2,000 predicts, precomputed (baseline)"])
    serve_outside = serve_outside / 2000 * 1000
    serve_inside = _median(requests(m_inside, one_in), rounds=rounds["2,000 predicts, inside"]) / 2000 * 1000
    print(f"{len(train):,} training rows, {len(DERIVED)} derived features, HistGradientBoosting")
    print(f"training  precomputed columns (baseline) {fit_outside:6.2f} s   derived inside {fit_inside:6.2f} s   "
          f"ratio {fit_inside / fit_outside:.2f}x")
    print(f"serving   1-row predict (baseline)   {serve_outside:6.2f} ms  derived inside {serve_inside:6.2f} ms  "
          f"ratio {serve_inside / serve_outside:.2f}x (+{serve_inside - serve_outside:.2f} ms a request)")
    results.write(
        "features", "Derived features computed inside the model against the same columns precomputed",
        "make bench-features", settings={"rows": args.rows, "training_rows": len(train), "derived": len(DERIVED),
                                         "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")},
        ratios=[results.ratio("fit, derived inside / precomputed", fit_inside / fit_outside, "<= 1.1"),
                results.ratio("one-row predict_proba, derived inside / precomputed", serve_inside / serve_outside)],
        figures={"fit_seconds": {"precomputed (baseline)": round(fit_outside, 3), "inside": round(fit_inside, 3)},
                 "predict_ms": {"precomputed (baseline)": round(serve_outside, 3), "inside": round(serve_inside, 3)}},
        rounds=[{"measure": k, "seconds": [round(t, 4) for t in v]} for k, v in rounds.items()])


if __name__ == "__main__":
    main()
