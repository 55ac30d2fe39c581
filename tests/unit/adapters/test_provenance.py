"""The cache key's code hash covers the code that decides what a run computes."""

from __future__ import annotations

from pathlib import Path

from driftline.adapters import provenance

REPO = Path(__file__).resolve().parents[3]


def test_the_code_hash_reads_the_library_the_tasks_and_the_flows():
    files = {path.relative_to(REPO).as_posix() for path in provenance.code_files()}
    # When provenance.py moved into adapters/, its root pointed at driftline/ and the hash read no file:
    # every code change was then "unchanged" to the training cache.
    assert {"driftline/core/training.py", "tasks/data.py", "flows/training.py"} <= files
    assert provenance.SOURCE_ROOT == REPO
    assert provenance.lock_hash(REPO / "no-such-project") == provenance.file_hash(REPO / "uv.lock") != "missing"
