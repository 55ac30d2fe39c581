"""`dvc repro` stages: evaluate applies the flow's absolute gates, and dvc.yaml lists what each stage reads."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from driftline.app import stages
from driftline.config import apply_overrides
from driftline.core import demo_data

REPO = Path(__file__).resolve().parents[3]

# Fast and lenient: every gate passes unless a test tightens one.
LENIENT = (
    "training.estimator={kind: logistic_regression}",
    "evaluation.thresholds={roc_auc: {min: 0.7}}",
    "evaluation.fairness=[{attribute: gender, metric: recall, max_gap: 1, min_group_size: 50}]",
    "evaluation.behavioral=[]",
)


@pytest.fixture
def workdir(tmp_path, monkeypatch, raw_params):
    """A project directory with the demo data, as `dvc repro` runs the stages (paths are relative)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    demo_data.generate(3000).to_parquet(tmp_path / "data" / "loans.parquet", index=False)

    def run(*overrides: str) -> int:
        raw = apply_overrides(yaml.safe_load(yaml.safe_dump(raw_params)), [*LENIENT, *overrides])
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        assert stages.main(["train"]) == 0
        return stages.main(["evaluate"])

    return run


def _metrics() -> dict[str, float]:
    return json.loads(Path("metrics.json").read_text())


def test_evaluate_passes_and_writes_metrics_and_the_gate_table(workdir):
    assert workdir() == 0
    assert _metrics()["holdout_roc_auc"] > 0.7
    text = Path("artifacts/gates.md").read_text()
    assert "| gate | challenger | champion | threshold | result |" in text
    assert "| holdout roc_auc |" in text
    assert "fairness: recall gap across gender" in text
    assert "**FAIL**" not in text
    assert "every gate passed" in text


def test_a_failed_metric_gate_fails_the_stage_after_writing_metrics(workdir, capsys):
    assert workdir("evaluation.thresholds.accuracy={min: 0.999}") == 1
    assert set(_metrics()) == {"holdout_accuracy", "holdout_precision", "holdout_recall", "holdout_f1",
                               "holdout_roc_auc"}
    text = Path("artifacts/gates.md").read_text()
    assert re.search(r"\| holdout accuracy \| [0-9.]+ \| — \| >= 0.999 \| \*\*FAIL\*\* \|", text)
    assert "1 of 3 gates failed: holdout accuracy" in capsys.readouterr().out


def test_a_fairness_gate_that_cannot_be_evaluated_fails_the_stage(workdir):
    assert workdir("evaluation.fairness.0.min_group_size=5000") == 1
    assert "cannot be evaluated: fewer than two groups with at least 5000 rows" in \
        Path("artifacts/gates.md").read_text()


def test_a_failed_behavioral_test_fails_the_stage(workdir):
    strict = ("evaluation.behavioral=[{kind: invariance, name: credit does not matter, feature: credit_score, "
              "values: [300, 850], max_mean_change: 0.0}]")
    assert workdir(strict) == 1
    assert "behavioral (invariance): credit does not matter" in Path("artifacts/gates.md").read_text()


# --- dvc.yaml lists the code each stage runs ------------------------------------------------------------


def _imports(module: str) -> set[str]:
    """driftline modules imported by `module` (a dotted name), transitively, as repository paths."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = REPO / (name.replace(".", "/") + ".py")
        if not path.exists():  # a package: its __init__ and, through its imports, its modules
            path = REPO / name.replace(".", "/") / "__init__.py"
        if not path.exists() or str(path) in seen:
            continue
        seen.add(str(path))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("driftline"):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("driftline")]
    return {str(Path(p).relative_to(REPO)) for p in seen}


# The adapter that reads the file is not a stage's logic; DVC tracks the data itself.
NOT_DEPS = {"driftline/__init__.py", "driftline/core/__init__.py", "driftline/adapters/dvc_data.py"}


@pytest.mark.parametrize(("stage", "modules"), [
    ("validate", ["driftline.core.validation", "driftline.core.frames", "driftline.config"]),
    ("train", ["driftline.core.training"]),
    ("evaluate", ["driftline.core.training", "driftline.core.evaluation", "driftline.core.gates"]),
])
def test_dvc_stages_depend_on_the_code_they_run(stage, modules):
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    needed = ({"driftline/app/stages.py"} | set().union(*(_imports(m) for m in modules))) - NOT_DEPS
    if stage == "validate":
        needed.add("driftline/core/markdown.py")  # validation_markdown writes the stage's output
    assert needed <= set(spec["deps"]), f"{stage} misses {sorted(needed - set(spec['deps']))}"
    # A dependency that no longer exists (a module renamed) makes `dvc repro` fail outright.
    code = [d for d in spec["deps"] if d.endswith(".py")]
    assert [d for d in code if not (REPO / d).exists()] == [], f"{stage} lists files that do not exist"
    assert spec["cmd"] == f"python -m driftline.app.stages {stage}"


def test_dvc_evaluate_declares_the_gate_table_and_metrics_uncached():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluate"]
    assert {"artifacts/gates.md": {"cache": False}} in spec["outs"]
    assert {"metrics.json": {"cache": False}} in spec["metrics"]
    assert str(stages.GATES) == "artifacts/gates.md"
    assert "evaluation" in spec["params"]
