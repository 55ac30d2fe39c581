"""The environment-variable reference: every field of the settings classes (`DRIFTLINE_<NAME>`,
`DRIFTLINE_SERVE_<NAME>`, `DRIFTLINE_TEAM_<NAME>`) with its type, default and description, then
every other `DRIFTLINE_*` name the code reads, found by scanning the sources."""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path
from typing import Any

from mdtext import cell

# (module, class): the settings classes, each reading its own prefix. The one list to edit when
# a settings class moves or a new one appears.
SETTINGS = [("driftline.config", "Settings"), ("driftline.config", "ServeSettings"),
            ("driftline.app.team", "TeamSettings")]
TITLES = {"Settings": "Where things live", "ServeSettings": "The model server (`driftline serve`)",
          "TeamSettings": "The team profile (`driftline up --profile team`)"}
# Fields whose class gives no description (the class's own docstring or comments say it).
FALLBACK = {
    "DRIFTLINE_PROJECT_DIR": "The git+DVC project.",
    "DRIFTLINE_MLFLOW_UI_URL": "Where `driftline up` starts the MLflow UI, and the base of the links printed.",
    "DRIFTLINE_PREFECT_UI_URL": "Where `driftline up` starts the Prefect server and UI, and the base of the links.",
    "DRIFTLINE_SERVE_HOST": "Where the model server listens.",
    "DRIFTLINE_SERVE_PORT": "Where the model server listens.",
    "DRIFTLINE_SERVE_MAX_BODY_BYTES": "A larger request body is answered 413.",
    "DRIFTLINE_TEAM_POSTGRES_PORT": "The team profile's PostgreSQL on loopback (not 5432, which a machine's own "
                                    "PostgreSQL usually has).",
    "DRIFTLINE_TEAM_WORKERS": "Prefect process workers the team profile starts.",
    "DRIFTLINE_TEAM_REPLICAS": "Production model server replicas the team profile starts (and one staging server).",
}
DEFAULT_TEXT = {"project_dir": "the working directory"}
# Read outside the settings classes: what each one does.
OTHERS = {
    "DRIFTLINE_NOTIFY_WEBHOOK_URL": "A Slack incoming webhook (or anything that takes Slack's `{\"text\": ...}`): "
                                    "with it, the deployments' process creates the notification automations. "
                                    "A secret: kept in a Prefect block, never in a file.",
    "DRIFTLINE_BENCH_RESULTS": "Where the benchmarks write their JSON records (default `benchmarks/results`).",
}
SOURCES = ("driftline", "deployments", "flows", "tasks", "benchmarks", "scripts")
NAME = re.compile(r"\bDRIFTLINE_[A-Z0-9_]*[A-Z0-9]\b")


def render(repo: Path) -> str:
    out, covered, prefixes = [], set(), []
    for module, name in SETTINGS:
        cls = getattr(importlib.import_module(module), name)
        prefix = cls.model_config.get("env_prefix", "")
        prefixes.append(prefix)
        out.append(f"## {TITLES.get(name, name)}\n")
        out.append(f"`{module}.{name}` reads these.\n")
        out.append("| variable | type | default | description |\n|---|---|---|---|")
        for field, info in cls.model_fields.items():
            if _is_settings(info.annotation):
                continue  # a nested class with its own prefix, listed on its own
            var = f"{prefix}{field.upper()}"
            covered.add(var)
            desc = info.description or FALLBACK.get(var, "")
            out.append(f"| `{var}` | {_type(info.annotation)} | {_default(field, info)} | {_cell(desc)} |")
        out.append("")
    found = _scan(repo)
    rest = {var: files for var, files in found.items() if var not in covered
            and not any(var == p.rstrip("_") for p in prefixes)}
    out.append("## Read elsewhere\n")
    out.append("| variable | read in | description |\n|---|---|---|")
    for var, files in sorted(rest.items()):
        out.append(f"| `{var}` | {', '.join(f'`{f}`' for f in files)} | {_cell(OTHERS.get(var, ''))} |")
    return "\n".join(out) + "\n"


def _scan(repo: Path) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for top in SOURCES:
        for path in sorted((repo / top).rglob("*.py")) if (repo / top).is_dir() else []:
            for var in NAME.findall(path.read_text(errors="replace")):
                found.setdefault(var, set()).add(str(path.relative_to(repo)))
    return {var: sorted(files) for var, files in found.items()}


def _is_settings(annotation: Any) -> bool:
    return isinstance(annotation, type) and hasattr(annotation, "model_config") and "env_prefix" in getattr(
        annotation, "model_config", {})


def _type(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return " or ".join(_type(a) for a in args)
    return {"str": "text", "int": "integer", "float": "number", "bool": "boolean", "Path": "path"}.get(
        getattr(annotation, "__name__", str(annotation)), getattr(annotation, "__name__", str(annotation)))


def _default(field: str, info: Any) -> str:
    if field in DEFAULT_TEXT:
        return DEFAULT_TEXT[field]
    if info.default_factory is not None or info.default is None:
        return "unset"
    value = info.default
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _cell(text: str) -> str:
    return cell(text)
