"""The type checker `make test` runs (mypy, configured in pyproject.toml) is set at a level that
refuses a wrong argument to a core function: a probe module calling `gates.metric_gates` and
`monitoring.recheck` with the wrong types is refused, naming each call, and the same calls with
the right types pass."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RIGHT = """\
from driftline.config import load_params
from driftline.core import gates, monitoring

p = load_params("params.yaml")
gates.metric_gates(p, {"roc_auc": 0.8}, None)
monitoring.recheck(monitoring.Decision("drift", 0.5, [], [], "drift"), 2.0, p.monitoring)
"""
WRONG = """\
from driftline.config import load_params
from driftline.core import gates, monitoring

p = load_params("params.yaml")
gates.metric_gates("params.yaml", {"roc_auc": 0.8}, None)
monitoring.recheck(monitoring.Decision("drift", 0.5, [], [], "drift"), "2 hours", p.monitoring)
"""


def _check(tmp_path: Path, source: str) -> tuple[str, int]:
    from mypy import api

    probe = tmp_path / "probe.py"
    probe.write_text(source)
    # The project's settings, on the probe alone (the library it imports is read from the cache
    # `make test`'s own mypy run leaves).
    out, err, status = api.run(["--config-file", str(REPO / "pyproject.toml"), "--cache-dir",
                                str(REPO / ".mypy_cache"), str(probe)])
    return out + err, status


def test_mypy_refuses_a_wrong_argument_to_a_core_function_and_passes_the_right_one(tmp_path):
    said, status = _check(tmp_path, RIGHT)
    assert status == 0, said
    said, status = _check(tmp_path, WRONG)
    assert status == 1
    assert 'probe.py:5: error: Argument 1 to "metric_gates" has incompatible type "str"; expected "Params"' in said
    assert 'probe.py:6: error: Argument 2 to "recheck" has incompatible type "str"; expected "float | None"' in said
