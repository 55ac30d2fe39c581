"""Benchmark results as JSON records under `benchmarks/results/`, one file a run: what it measured,
with which settings, on which machine, when and at which commit. The documentation's benchmarks
pages are drawn from these files (newest first), so a result is never pasted into prose.

A record:

    {"schema": 1, "benchmark": "serving", "title": ..., "command": "make bench-serving",
     "date": "2026-12-06T04:57:00Z", "commit": "<sha>", "dirty": false,
     "machine": {"description", "cores", "memory_gb", "cpu", "platform", "python"},
     "settings": {...}, "ratios": [{"name", "value", "goal", "met"}], "figures": {...},
     "rounds": [...], "notes": "..."}

`ratios` are the headline: each against the named baseline of the same run, with its goal
("<= 1.10") when there is one. `figures` are the measurements behind them, `rounds` every round
as measured (the ratios are of medians of interleaved rounds).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SCHEMA = 1
REQUIRED = ("schema", "benchmark", "title", "command", "date", "commit", "machine", "ratios", "figures")
_GOAL = re.compile(r"^\s*(<=|>=|<|>)\s*(-?[0-9.]+)\s*$")


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model: what a figure measured on this machine needs beside it."""
    cpu, memory_gb = platform.processor() or None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:  # not Linux: the platform module's answer stands
        pass
    return {"description": f"{os.cpu_count()} cores, {memory_gb} GB", "cores": os.cpu_count(),
            "memory_gb": memory_gb, "cpu": cpu, "platform": platform.platform(),
            "python": platform.python_version()}


def commit(repo: Path = REPO) -> tuple[str | None, bool]:
    """The checkout's commit, and whether its tracked files differ from it (the run then measured
    code that no commit holds, and the record says so)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no")
    return sha, bool(changed)


def ratio(name: str, value: float, goal: str | None = None, note: str | None = None) -> dict[str, Any]:
    """A headline ratio; `met` is worked out from a goal such as "<= 1.10" or ">= 25"."""
    met = None
    if goal is not None:
        match = _GOAL.match(goal)
        if match is None:
            raise ValueError(f"goal {goal!r}: expected an operator and a number, e.g. '<= 1.10'")
        op, bound = match.group(1), float(match.group(2))
        met = {"<=": value <= bound, ">=": value >= bound, "<": value < bound, ">": value > bound}[op]
    out: dict[str, Any] = {"name": name, "value": round(value, 4), "goal": goal, "met": met}
    if note:
        out["note"] = note
    return out


def write(benchmark: str, title: str, command: str, *, ratios: list[dict], figures: dict, rounds: list | None = None,
          settings: dict | None = None, notes: str | None = None, directory: Path | None = None) -> Path:
    """Write this run's record and say where; `directory` defaults to benchmarks/results (or
    DRIFTLINE_BENCH_RESULTS)."""
    directory = Path(directory or os.environ.get("DRIFTLINE_BENCH_RESULTS") or RESULTS)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    sha, dirty = commit()
    record = {"schema": SCHEMA, "benchmark": benchmark, "title": title, "command": command,
              "date": now.isoformat().replace("+00:00", "Z"), "commit": sha, "dirty": dirty, "machine": machine(),
              "settings": settings or {}, "ratios": ratios, "figures": figures, "rounds": rounds or []}
    if notes:
        record["notes"] = notes
    path = directory / f"{benchmark}-{now:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(record, indent=2, default=_plain) + "\n")
    print(f"\nresult written to {_shown(path)}", flush=True)
    return path


def problems(record: Any) -> list[str]:
    """What is wrong with a record, if anything (the docs build refuses a bad one)."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    found = [f"no {key!r}" for key in REQUIRED if key not in record]
    if not isinstance(record.get("ratios", []), list):
        found.append("'ratios' is not a list")
    for r in record.get("ratios", []) if isinstance(record.get("ratios"), list) else []:
        if not isinstance(r, dict) or "name" not in r or "value" not in r:
            found.append(f"a ratio without a name and a value: {r!r}")
    if not isinstance(record.get("machine", {}), dict):
        found.append("'machine' is not an object")
    if "date" in record and not _is_date(str(record["date"])):
        found.append(f"'date' is not ISO 8601: {record['date']!r}")
    return found


def load_all(directory: Path = RESULTS) -> list[dict]:
    """Every record, newest first; a record that does not parse or lacks a field raises, naming the file."""
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path}: not JSON ({err})") from None
        if found := problems(record):
            raise ValueError(f"{path}: " + "; ".join(found))
        records.append({**record, "_file": path.name})
    return sorted(records, key=lambda r: (str(r["date"]), r["_file"]), reverse=True)


def _is_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _plain(value: Any) -> Any:
    """NumPy numbers and paths as JSON."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)
