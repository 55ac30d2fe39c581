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
    from driftline import dvc_data
    from driftline.config import load_params
    from driftline.core import evaluation, training

    p = load_params(root / "params.yaml")
    df = dvc_data.read_table(root / p.data.path)
    parts = training.split(df, p)
    model = training.train(parts.train, p)
    return evaluation.evaluate(model, parts.train, parts.holdout, p).metrics


def pipeline(root: Path, *overrides: str) -> dict:
    from flows.training import training_pipeline

    result = training_pipeline(project_dir=str(root), overrides=list(overrides), reason="benchmark")
    return {"status": result["status"], "version": result["version"]}


def main() -> None:
    phase, root = sys.argv[1], Path(sys.argv[2])
    import evidently  # noqa: F401 - warm imports, outside the clock
    import mlflow.sklearn
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import prefect  # noqa: F401

    import flows.training  # noqa: F401

    start = time.perf_counter()
    if phase == "bare":
        out = bare(root)
    elif phase == "challenger":
        out = pipeline(root, "training.seed=1")
    else:
        out = pipeline(root)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": phase, "seconds": seconds, "peak_rss_mb": peak, "result": out}))


if __name__ == "__main__":
    main()
