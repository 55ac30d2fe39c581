"""The rollout's analysis window (adapters/rollout_checks) reads only the rows of the two versions under test."""

from __future__ import annotations

import pandas as pd

from driftline.adapters.registry.rollout_checks import window
from driftline.services import PartitionedPredictions


def _log(directory, rows: list[tuple[str, str, str]]) -> None:
    """Rows (minute offset, variant, model_version) written as one part of the prediction log."""
    start = pd.Timestamp("2026-01-05T10:00:00Z")
    frame = pd.DataFrame([{"request_id": f"r{i}", "timestamp": (start + pd.Timedelta(minutes=int(m))).isoformat(),
                           "variant": v, "model_version": version, "status": "ok", "latency_ms": 1.0, "score": 0.5}
                          for i, (m, v, version) in enumerate(rows)])
    part = directory / "predictions" / "date=2026-01-05" / "hour=10"
    part.mkdir(parents=True)
    frame.to_parquet(part / "part-0.parquet", index=False)


def test_the_window_holds_only_the_champion_and_the_challenger_under_test(tmp_path):
    _log(tmp_path, [
        ("0", "champion", "1"),     # before the rollout began: not baseline
        ("5", "champion", "1"),     # baseline
        ("7", "champion", "3"),     # a champion swapped in behind this rollout's back
        ("8", "challenger", "2"),   # before this step: not the step's evidence
        ("11", "challenger", "9"),  # another rollout's challenger, answered during this step
        ("12", "challenger", "2"),  # the step's evidence
        ("13", "shadow", "2"),      # the same version mirrored (shadow rollouts read these)
        ("14", "champion", "1"),    # baseline
    ])
    began, step = pd.Timestamp("2026-01-05T10:04:00Z"), pd.Timestamp("2026-01-05T10:10:00Z")
    preds, _ = window(PartitionedPredictions(tmp_path), step, began, ("1", "2"))
    kept = list(zip(preds["request_id"], preds["variant"], preds["model_version"], strict=True))
    assert kept == [("r1", "champion", "1"), ("r5", "challenger", "2"), ("r6", "shadow", "2"),
                    ("r7", "champion", "1")], "rows of other versions count as evidence about these two"
