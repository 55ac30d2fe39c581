"""`dvc repro` stages: the same library functions the Prefect flow calls, without Prefect or MLflow.

    python -m driftline.app.stages validate|train|evaluate [--params params.yaml]

Outputs land in `artifacts/` and `metrics.json`, declared in `dvc.yaml`. `evaluate` applies
the absolute gates and fails when one does. The distribution check and the comparison with the
champion need the registry, so they run only in the Prefect flow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import sys
from pathlib import Path

from driftline import services
from driftline.adapters import dvc_data
from driftline.config import ConfigError
from driftline.core import evaluation, gates, training, validation
from driftline.core import search as hpo
from driftline.core.markdown import validation_markdown

ARTIFACTS = Path("artifacts")
MODEL = ARTIFACTS / "model.pkl"
METRICS = Path("metrics.json")
GATES = ARTIFACTS / "gates.md"


def _data(p):
    return dvc_data.read_table(Path(p.data.path))


def validate(p) -> int:
    report = validation.validate(_data(p), p)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "validation.md").write_text(validation_markdown(report, f"Data validation: {p.data.path}"))
    print(report.summary())
    return 0 if report.passed else 1


def train(p) -> int:
    parts = training.split(_data(p), p)
    if p.training.search is not None and p.training.search.enabled:
        # In this process, one trial after another: the trials a Dask cluster would run, the same best.
        best = hpo.best(hpo.in_process(parts.train, p), hpo.direction(p))
        print(f"search: best cross-validated {p.evaluation.primary_metric} {best.score:.4f} with {best.values}")
        p = hpo.with_values(p, best.values)
    model = training.train(parts.train, p)
    ARTIFACTS.mkdir(exist_ok=True)
    MODEL.write_bytes(pickle.dumps(model))
    print(f"trained {p.training.estimator.kind} on {len(parts.train)} rows -> {MODEL}")
    return 0


def evaluate(p) -> int:
    """Holdout metrics, then the absolute gates the flow applies (thresholds, fairness,
    behavioural; the champion comparison needs the registry). Exits 1 if a gate fails, after
    writing metrics.json and artifacts/gates.md."""
    parts = training.split(_data(p), p)
    model = pickle.loads(MODEL.read_bytes())
    ev = evaluation.evaluate(model, parts.train, parts.holdout, p)
    METRICS.write_text(json.dumps({f"holdout_{k}": v for k, v in ev.metrics.items()}, indent=2) + "\n")
    print(json.dumps(ev.metrics))
    checks = (gates.metric_gates(p, ev.metrics, None) + gates.fairness_gates(ev.slices)
              + gates.behavioral_gates(ev.behavioral))
    verdict = gates.failure_paragraph(checks)
    ARTIFACTS.mkdir(exist_ok=True)
    GATES.write_text(f"# Gates: {p.data.path}\n\n**{verdict}**\n\n{gates.markdown_table(checks)}\n")
    print(verdict)
    return 0 if all(g.passed for g in checks) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m driftline.app.stages")
    parser.add_argument("stage", choices=["validate", "train", "evaluate"])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        try:
            # The path as dvc gives it, from where dvc runs the stage; the stages reach no service.
            project = stack.enter_context(services.open_project(params_path=Path(args.params).resolve()))
        except ConfigError as err:
            print(err, file=sys.stderr)
            return 2
        return {"validate": validate, "train": train, "evaluate": evaluate}[args.stage](project.params)


if __name__ == "__main__":
    sys.exit(main())
