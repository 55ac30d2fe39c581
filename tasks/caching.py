"""Task caching keyed on what the flow says the inputs are (DVC md5, config sections, code)."""

from __future__ import annotations

from pathlib import Path


def from_cache_key(context, parameters) -> str:
    """Use the task's `cache_key` parameter: hashing a million-row DataFrame would cost more
    than it saves, and the DVC md5 already names the data."""
    return parameters["cache_key"]


def in_project(task, state_dir: Path):
    """Cached results live with the project's state, not in a user-wide folder."""
    return task.with_options(result_storage=state_dir / "cache")
