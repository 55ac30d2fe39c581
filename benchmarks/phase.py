"""One timed phase of the pipeline benchmark, run in its own process so that its peak memory
is its own. Imports happen before the clock starts: a worker process pays them once."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def bare(root: Path) -> dict:
    """The same load/split/train/evaluate work with no Prefect, MLflow or DVC."""
    from driftline.adapters import dvc_data
    from driftline.config import load_params
    from driftline.core import evaluation, training

    p = load_params(root / "params.yaml")
    df = dvc_data.read_table(root / p.data.path)
    parts = training.split(df, p)
    model = training.train(parts.train, p)
    return evaluation.evaluate(model, parts.train, parts.holdout, p).metrics


def checks(root: Path) -> dict:
    """What a new data version's checks add to a training against a champion: the version against
    the champion's (its first 90% of rows here) and near-copies in validation, the near-copy keys
    the split groups by, and the champion's data read for the pinned set, the rows it trained on
    and its fairness groups. The split itself is the bare script's, and left out."""
    from driftline.adapters import dvc_data
    from driftline.config import load_params
    from driftline.core import pinned, training, versions

    p = load_params(root / "params.yaml")
    new = dvc_data.read_table(root / p.data.path)
    old = new.iloc[: len(new) * 9 // 10]
    spec = training.split_spec(p, training.split(new.iloc[:0], p))  # a hash split's spec needs no rows
    train = new.iloc[len(new) // 5:]  # stands in for the training part
    started = time.perf_counter()
    report = [*versions.against(old, new, p, "1"), versions.near_duplicates(new, p)]
    versions.near_duplicated(new, p)  # the split's grouping
    data = pinned.from_champion_data(old, spec, spec, train, p)
    return {"passed": all(c.passed for c in report), "pinned_rows": len(data.holdout),
            "checks_seconds": time.perf_counter() - started}


def pipeline(root: Path, *overrides: str) -> dict:
    from driftline.app.cli_common import flow_settings
    from flows.training import training_pipeline

    with flow_settings():  # the Prefect settings `driftline train` runs the flow with
        result = training_pipeline(project_dir=str(root), overrides=list(overrides), reason="benchmark")
    return {"status": result["status"], "version": result["version"]}


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak. (ru_maxrss would carry over the parent's peak across
    fork+exec on Linux, and the parent built a million-row dataset.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    phase, root, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    import evidently  # noqa: F401 - warm imports, outside the clock
    import mlflow.sklearn
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import prefect  # noqa: F401

    import flows.training  # noqa: F401

    start = time.perf_counter()
    out = bare(root) if phase == "bare" else checks(root) if phase == "checks" else pipeline(root, *overrides)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"phase": phase, "seconds": seconds, "peak_rss_mb": peak, "result": out}))


if __name__ == "__main__":
    main()
