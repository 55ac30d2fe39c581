"""NannyML's CBPE on the windows `benchmarks/estimation.py` wrote, for the comparison there.

Run by that benchmark with the Python of a separate environment that has NannyML (it does not
install beside driftline's lock): it imports nothing from driftline. Reads `reference.parquet`
(the champion's holdout: score, y_pred, y_true) and `windows.parquet` (the same columns and a
`window` id) from `--dir`; writes `nannyml.json`: per window, each metric's estimate with
NannyML's sampling error and confidence band (3 of them), and the seconds each `estimate` call took.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def main() -> None:
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no analytics calls from a benchmark
    import nannyml as nml
    import pandas as pd

    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    reference = pd.read_parquet(args.dir / "reference.parquet")
    windows = pd.read_parquet(args.dir / "windows.parquet")
    out = {"nannyml": nml.__version__, "windows": {}}
    for window, rows in windows.groupby("window", sort=False):
        estimator = nml.CBPE(y_pred_proba="score", y_pred="y_pred", y_true="y_true",
                             problem_type="classification_binary", metrics=METRICS, chunk_number=1)
        estimator.fit(reference)
        began = time.perf_counter()
        result = estimator.estimate(rows.drop(columns=["window", "y_true"]).reset_index(drop=True)).to_df()
        seconds = time.perf_counter() - began
        analysis = result[result[("chunk", "period")] == "analysis"].iloc[0]  # the reference's chunk comes first
        found = {}
        for metric in METRICS:
            found[metric] = {"value": float(analysis[(metric, "value")]),
                             "sampling_error": float(analysis[(metric, "sampling_error")]),
                             "low": float(analysis[(metric, "lower_confidence_boundary")]),
                             "high": float(analysis[(metric, "upper_confidence_boundary")])}
        out["windows"][str(window)] = {"metrics": found, "seconds": seconds}
    (args.dir / "nannyml.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
