"""Drift-monitor benchmark: driftline's decision on a 1,000,000-row window against Evidently's
`DataDriftPreset` on the same full window (the named baseline), same reference; and the same
decision with the champion's performance estimated in the same pass (`--rounds` interleaved
rounds of the three, medians, every round printed).

    make bench-monitor     # or: uv run python -m benchmarks.monitor --rows 1000000

For each demo scenario it writes the window (demo data plus a score column) to Parquet, then
runs, each in a fresh process so that peak memory is its own: Evidently on the full window
(read whole from the log), driftline's monitor (its own read of the log, `assess`, then its HTML
report drawn from those statistics over every row) on the full window, and Evidently's HTML
report on its sample (the `monitoring.report: evidently` choice). Reading the log is timed with
each; imports are timed apart (Evidently's import alone is seconds). Prints time and peak-memory
ratios and whether every per-column decision agrees.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import results

SCENARIOS = ("baseline", "covariate_shift", "new_category")


def _prepare(out: Path, rows: int, reference_rows: int, scenario: str) -> None:
    """The reference, and the window as the model server writes it: Parquet parts of 5,000 rows
    in date/hour partitions, with the log's own columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.core import demo_data

    reference = demo_data.generate(reference_rows, seed=1)
    reference["prediction"] = np.random.default_rng(0).beta(2, 8, len(reference))
    reference.to_parquet(out / "reference.parquet")
    current = demo_data.generate(rows, seed=2, scenario=scenario).drop(columns=["application_date", "defaulted"])
    score = np.random.default_rng(1).beta(2, 8 if scenario == "baseline" else 6, rows)
    start = datetime.now(UTC) - timedelta(minutes=50)
    current.insert(0, "request_id", [f"{i:016x}" for i in range(rows)])
    current.insert(1, "timestamp", [(start + timedelta(seconds=i * 2400 / rows)).isoformat() for i in range(rows)])
    current.insert(2, "variant", "champion")
    current.insert(3, "model_version", "1")
    current.insert(4, "status", "ok")
    current["prediction"], current["score"] = (score >= 0.3).astype("int64"), score
    log = out / scenario / "predictions"
    for i in range(0, rows, 5000):
        part = current.iloc[i:i + 5000]
        stamp = part["timestamp"].iloc[0]
        target = log / f"date={stamp[:10]}" / f"hour={stamp[11:13]}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), target / f"part-{i:08d}.parquet")


def _child(kind: str, directory: Path, scenario: str) -> dict:
    import pandas as pd

    from driftline.adapters import predlog_reader
    from driftline.config import load_params, names_by_type

    p = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    numeric, categorical = names_by_type(p.data.features)
    t0 = time.perf_counter()
    if kind in ("evidently", "report"):
        import evidently.presets  # noqa: F401 - the import is timed apart

        from driftline.adapters import evidently_drift
    else:
        from driftline.core import drift_report, monitoring, window_performance
    imported = time.perf_counter()
    reference = pd.read_parquet(directory / "reference.parquet")
    scoring = _scoring(reference) if kind == "estimate" else None
    since = datetime.now(UTC) - timedelta(hours=24)
    start = time.perf_counter()
    if kind in ("driftline", "estimate"):  # the monitor's own read: its columns, categoricals as categories
        current, _ = predlog_reader.read_live_window(directory / scenario, since, None, p)
    else:
        current = predlog_reader.read_log(directory / scenario / "predictions")
    if kind == "evidently":
        result = evidently_drift.evidently_data_drift(current, reference, numeric, categorical, with_html=False)
        decisions = {c.column: c.drifted for c in result.columns}
        scores = {c.column: c.score for c in result.columns}
    elif kind in ("driftline", "estimate"):
        result = monitoring.assess(current, pd.DataFrame(), reference, p, "1", None, None, scoring=scoring)
        rows = result.rows
        decisions = {c.column: c.drifted for c in result.columns if c.column != "prediction"}
        scores = {c.column: c.score for c in result.columns}
        decided = time.perf_counter()
        html = drift_report.render(current, reference, p, result, "1")
        report_seconds, report_bytes = time.perf_counter() - decided, len(html)
    else:  # Evidently's report, on its sample
        n = p.monitoring.report_rows
        sample = current.sample(min(len(current), n), random_state=0)
        html = evidently_drift.monitor_html(sample, reference.sample(min(len(reference), n), random_state=0),
                                         numeric, categorical)
        decisions, scores = {}, {"html_bytes": len(html)}
    if kind not in ("driftline", "estimate"):
        rows = len(current)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"rows": rows, "seconds": seconds, "import_seconds": imported - t0, "peak_mb": peak_mb,
           "decisions": decisions, "scores": scores}
    if kind in ("driftline", "estimate"):  # `seconds` is the decision and the report; each apart too
        out.update(seconds_decision=seconds - report_seconds, seconds_report=report_seconds, report_bytes=report_bytes)
    if kind == "estimate":  # the estimate alone, timed again in the same process
        answered = monitoring.answered_by(current, "1")
        again = time.perf_counter()
        window_performance.judge(answered, monitoring.labels_of(answered, pd.DataFrame()), scoring,
                                 p.data.feature_names)
        out.update(seconds_estimate_alone=time.perf_counter() - again,
                   estimated={k: v.value for k, v in result.judged.estimate.metrics.items()})
    return out


def _scoring(reference):
    """A calibrator as training fits one (isotonic, on the reference's scores and labels)."""
    import numpy as np

    from driftline.core import calibration
    from driftline.core.window_performance import Scoring

    score = reference["prediction"].to_numpy()
    cal = calibration.fit("binary", [0, 1], reference["defaulted"].to_numpy(), np.column_stack([1 - score, score]))
    return Scoring(cal, 1, {"roc_auc": 0.84, "accuracy": 0.8})


def _run(kind: str, directory: Path, scenario: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.monitor", "--child", kind, "--dir", str(directory),
                           "--scenario", scenario], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=10_000, help="registry.reference_rows")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each kind (medians)")
    parser.add_argument("--child")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--scenario")
    args = parser.parse_args()
    if args.child == "prepare":
        _prepare(args.dir, args.rows, args.reference_rows, args.scenario)
        return
    if args.child:
        print(json.dumps(_child(args.child, args.dir, args.scenario)))
        return
    figures, ratios, every = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"window: {args.rows:,} rows per scenario; reference: {args.reference_rows:,} rows; "
              "14 features + the score")
        for scenario in args.scenarios.split(","):
            # In a child too: Linux carries a parent's peak RSS into the children it forks and
            # execs, so this process must stay small for the children's peaks to be their own.
            subprocess.run([sys.executable, "-m", "benchmarks.monitor", "--child", "prepare", "--dir", str(directory),
                            "--scenario", scenario, "--rows", str(args.rows), "--reference-rows",
                            str(args.reference_rows)], check=True)
            rounds_of: dict[str, list[dict]] = {"evidently": [], "driftline": [], "estimate": []}
            for i in range(args.rounds):  # interleaved: the machine's drift hits each kind alike
                for kind in rounds_of:
                    rounds_of[kind].append(_run(kind, directory, scenario))
                    r = rounds_of[kind][-1]
                    print(f"  [{scenario}] round {i + 1} {kind:9}: {r['seconds']:6.2f} s"
                          + (f" (estimate alone {r['seconds_estimate_alone']:.3f} s)" if kind == "estimate" else ""))
                    every.append({"scenario": scenario, "round": i + 1, "kind": kind,
                                  **{k: v for k, v in r.items() if k not in ("decisions", "scores", "estimated")}})
            full, ours, est = (_median_run(rounds_of[k]) for k in ("evidently", "driftline", "estimate"))
            report = _run("report", directory, scenario)
            agree = full["decisions"] == ours["decisions"] == est["decisions"]
            worst = max(abs(full["scores"][c] - ours["scores"][c]) for c in full["scores"])
            drifted = sorted(c for c, d in ours["decisions"].items() if d)
            print(f"\n[{scenario}] drifted: {', '.join(drifted) or 'none'} (rows judged: Evidently "
                  f"{full['rows']:,}, driftline {ours['rows']:,}); medians of {args.rounds} rounds")
            print(f"  Evidently DataDriftPreset, full window : {full['seconds']:7.1f} s, peak {full['peak_mb']:6.0f} MB"
                  f" (import {full['import_seconds']:.1f} s)")
            print(f"  driftline decision, full window        : {ours['seconds_decision']:7.1f} s"
                  f" (import {ours['import_seconds']:.1f} s)")
            print(f"  + its HTML report, every row           : {ours['seconds_report']:7.1f} s, peak "
                  f"{ours['peak_mb']:6.0f} MB for both ({ours['report_bytes'] / 1024:.0f} KB)")
            print(f"  the whole run with the estimate        : {est['seconds']:7.1f} s (the estimate alone "
                  f"{est['seconds_estimate_alone']:.3f} s)")
            print(f"  Evidently's report instead, on sample  : {report['seconds']:7.1f} s, peak "
                  f"{report['peak_mb']:6.0f} MB (monitoring.report: evidently)")
            print(f"  speed-up, decision alone               : {full['seconds'] / ours['seconds_decision']:7.1f}x")
            print(f"  speed-up, decision + report            : {full['seconds'] / ours['seconds']:7.1f}x")
            print(f"  speed-up, with the estimate            : {full['seconds'] / est['seconds']:7.1f}x")
            print(f"  speed-up, decision + Evidently's report: "
                  f"{full['seconds'] / (ours['seconds_decision'] + report['seconds']):7.1f}x")
            print(f"  peak memory ratio (driftline/Evidently): {ours['peak_mb'] / full['peak_mb']:7.2f}")
            print(f"  same per-column decisions              : {agree} (largest score difference {worst:.2e})")
            figures[scenario] = {
                "evidently_seconds": round(full["seconds"], 3), "evidently_peak_mb": round(full["peak_mb"]),
                "decision_seconds": round(ours["seconds_decision"], 3),
                "report_seconds": round(ours["seconds_report"], 3),
                "with_estimate_seconds": round(est["seconds"], 3),
                "estimate_alone_seconds": round(est["seconds_estimate_alone"], 3),
                "estimated": {k: round(v, 4) for k, v in est["estimated"].items()},
                "report_kb": round(ours["report_bytes"] / 1024), "driftline_peak_mb": round(ours["peak_mb"]),
                "evidently_report_seconds": round(report["seconds"], 3), "rows": ours["rows"],
                "same_decisions": agree, "largest_score_difference": worst, "drifted": drifted}
            ratios += [
                results.ratio(f"{scenario}: speed-up, decision + report", full["seconds"] / ours["seconds"]),
                results.ratio(f"{scenario}: speed-up, decision + report + the estimate",
                              full["seconds"] / est["seconds"]),
                results.ratio(f"{scenario}: the estimate's cost, whole run with it / without",
                              est["seconds"] / ours["seconds"], "<= 1.10"),
                results.ratio(f"{scenario}: the estimate alone / the whole run without it",
                              est["seconds_estimate_alone"] / ours["seconds"], "<= 0.10"),
                results.ratio(f"{scenario}: speed-up, decision alone", full["seconds"] / ours["seconds_decision"]),
                results.ratio(f"{scenario}: speed-up, decision + Evidently's report",
                              full["seconds"] / (ours["seconds_decision"] + report["seconds"])),
                results.ratio(f"{scenario}: peak memory, driftline / Evidently", ours["peak_mb"] / full["peak_mb"])]
    results.write("monitor", "The drift monitor, with and without the performance estimate, against Evidently's "
                  "DataDriftPreset on the same window", "make bench-monitor",
                  settings={"rows": args.rows, "reference_rows": args.reference_rows, "rounds": args.rounds},
                  ratios=ratios, figures=figures, rounds=every)


def _median_run(runs: list[dict]) -> dict:
    """The round whose whole-run time is the median (its other figures come with it)."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


if __name__ == "__main__":
    main()
