"""The serving plan's per-call cost against the Pipeline's, on the demo's champion (trained on
50,000 rows, as `make bench-serving` trains it), for batches of 1, 16 and 256 records: each the
server's own `predict_batch` (records in, labels and probabilities out), once through the plan and
once through the Pipeline, in interleaved rounds with every round printed, one OpenMP thread as
the server runs with. Part of `make bench-serving`; alone:

    uv run python -m benchmarks.plan --rounds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

from benchmarks import results

SIZES = (1, 16, 256)


def champion():
    """The demo model as the server loads it, with its plan checked as the server checks it."""
    from driftline.config import load_params
    from driftline.core import demo_data, evaluation, frames, plan_check, training
    from driftline.core.features import datetime_inputs
    from driftline.serving.loader import Loaded

    p = load_params(results.REPO / "params.yaml")
    parts = training.split(demo_data.generate(50_000, 7), p)
    model = training.train(parts.train, p)
    example = frames.features(parts.train.head(5), p.data)
    columns = {f.name: "double" if f.type == "numeric" else "string" for f in p.data.features}
    loaded = Loaded("1", model, columns, example, True, training.known_categories(model), datetime_inputs(model))
    reference = evaluation.reference_sample(parts.train, model, p)
    verdict = plan_check.compile_checked(model, columns, True, loaded.frame, [
        ("input example", loaded.example_records), ("reference", plan_check.records_of(reference, columns))])
    if verdict.plan is None:
        raise SystemExit(f"the demo model's plan is not used: {verdict.reason}")
    holdout = plan_check.records_of(frames.features(parts.holdout, p.data), columns)
    return dataclasses.replace(loaded, plan=verdict.plan), loaded, holdout


def per_call_ms(predict, loaded, records: list[dict], seconds: float) -> float:
    predict(loaded, records)  # warm
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        predict(loaded, records)
        calls += 1
    return 1000 * elapsed / calls


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from threadpoolctl import threadpool_limits

    from driftline.serving.rows import predict_batch

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    planned, pipeline, holdout = champion()
    rounds = []
    with threadpool_limits(1):
        for r in range(args.rounds):
            for size in SIZES:
                batch = holdout[r * 256:r * 256 + size]
                first, second = (planned, pipeline) if r % 2 == 0 else (pipeline, planned)  # A B, then B A
                ms = {id(m): per_call_ms(predict_batch, m, batch, args.seconds) for m in (first, second)}
                row = {"round": r + 1, "rows": size, "plan (ms)": round(ms[id(planned)], 4),
                       "Pipeline (ms)": round(ms[id(pipeline)], 4)}
                row["plan / Pipeline"] = round(row["plan (ms)"] / row["Pipeline (ms)"], 4)
                rounds.append(row)
                print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    ratios, figures = [], {}
    for size in SIZES:
        mine = [r for r in rounds if r["rows"] == size]
        plan_ms = statistics.median(r["plan (ms)"] for r in mine)
        pipe_ms = statistics.median(r["Pipeline (ms)"] for r in mine)
        ratio = statistics.median(r["plan / Pipeline"] for r in mine)  # each round's pair back to back
        print(f"{size:>4} rows: plan {plan_ms:.3f} ms, Pipeline {pipe_ms:.3f} ms a call (medians): plan / Pipeline = "
              f"{ratio:.3f}, the median of the rounds' ({', '.join(str(r['plan / Pipeline']) for r in mine)})")
        ratios.append(results.ratio(f"per-call cost, plan / Pipeline, {size} rows", ratio))
        figures[f"{size} rows"] = {"plan ms": plan_ms, "Pipeline ms": pipe_ms}
    results.write("plan", "The serving plan's per-call cost against the Pipeline's (the server's predict_batch)",
                  "make bench-serving", settings={"rounds": args.rounds, "seconds per measure": args.seconds,
                                                  "OMP_NUM_THREADS": "1", "model": "demo champion, 50,000 rows"},
                  ratios=ratios, figures=figures, rounds=rounds)


if __name__ == "__main__":
    main()
