"""mkdocs hook: the reference pages generated from the code at build time, and the benchmarks
pages drawn from benchmarks/results/*.json, so neither can drift from what they describe.

- A page holding `<!-- generated: NAME -->` (alone on a line) gets that block in its place: `params` (every
  params.yaml key, from the config schema), `cli` (every command and option, from the Typer app),
  `environment` (every DRIFTLINE_* variable, from the settings classes and the sources),
  `alerts` (the Prometheus rules as committed), `events` (the Prefect event names),
  `api-modules` (the list of library modules), `benchmarks` (every run, newest first) and
  `benchmarks:NAME` (one benchmark's runs). An unknown name, or a generator that fails, fails the
  build.
- The Python API: one page per module of API_PACKAGES (below, the one list to edit when a package
  appears), each rendered by mkdocstrings, added to the nav under the entry that points at
  reference/api/index.md. Modules are found by walking the source tree, so a module that moves
  or appears inside these packages needs no edit here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import bench_doc
import cli_doc
import env_doc
import ops_doc
import params_doc
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[2]
# The library's packages (and top-level modules) whose Python API the site documents.
API_PACKAGES = ["driftline.config", "driftline.core", "driftline.adapters", "driftline.serving",
                "driftline.services"]
API_INDEX = "reference/api/index.md"
# Where the Prefect event names are constants (the `events` block lists them, and fails the build
# when the page around it does not describe one).
EVENTS_MODULE = "driftline.adapters.registry.tags"
MARKER = re.compile(r"^<!--\s*generated:\s*([\w:-]+)\s*-->[ \t]*$", re.MULTILINE)  # alone on its line

if str(REPO) not in sys.path:  # the benchmarks package, when mkdocs runs from elsewhere
    sys.path.insert(0, str(REPO))


def api_modules() -> dict[str, list[str]]:
    """Each API package and its modules (subpackages included), in source order by path."""
    out = {}
    for name in API_PACKAGES:
        path = REPO / Path(*name.split("."))
        if path.with_suffix(".py").is_file():
            out[name] = [name]
            continue
        if not (path / "__init__.py").is_file():
            raise PluginError(f"API_PACKAGES names {name}, which is neither a module nor a package under {REPO}")
        modules = [name]
        for file in sorted(path.rglob("*.py")):
            parts = file.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            dotted = ".".join(parts)
            if dotted != name and not any(p.startswith("_") for p in parts):
                modules.append(dotted)
        out[name] = modules
    return out


def _page(module: str) -> str:
    return f"reference/api/{module}.md"


def on_config(config):
    """Put every module's page in the nav, under the entry pointing at reference/api/index.md."""
    groups = api_modules()
    entries = [API_INDEX]
    for package, modules in groups.items():
        if len(modules) == 1:
            entries.append({package: _page(package)})
        else:
            entries.append({package: [_page(m) for m in modules]})

    def place(items) -> bool:
        for i, item in enumerate(items or []):
            if isinstance(item, dict):
                (title, value), = item.items()
                if value == API_INDEX:
                    items[i] = {title: entries}
                    return True
                if isinstance(value, list) and place(value):
                    return True
        return False

    if config.nav is not None and not place(config.nav):
        raise PluginError(f"the nav has no entry pointing at {API_INDEX} to hang the Python API under")
    return config


def on_files(files, config):
    for modules in api_modules().values():
        for module in modules:
            package = (REPO / Path(*module.split(".")) / "__init__.py").is_file()
            # A package's page is its docstring; its modules have their own pages.
            options = "\n    options:\n      members: false" if package else ""
            content = f"# `{module}`\n\n::: {module}{options}\n"
            files.append(File.generated(config, _page(module), content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    def replace(match: re.Match) -> str:
        name = match.group(1)
        try:
            return _generate(name, page.file.src_uri, markdown)
        except PluginError:
            raise
        except Exception as err:  # any failure to generate fails the build, naming the page and the block
            raise PluginError(f"{page.file.src_uri}: generating '{name}' failed: {type(err).__name__}: {err}") from err

    return MARKER.sub(replace, markdown)


def _generate(name: str, here: str, markdown: str = "") -> str:
    if name == "params":
        from driftline.config import params_schema

        return params_doc.render(params_schema())
    if name == "cli":
        from driftline.app.cli import app

        return cli_doc.render(app)
    if name == "environment":
        return env_doc.render(REPO)
    if name == "events":
        return _events(here, markdown)
    if name == "alerts":
        return ops_doc.render(REPO / "ops" / "prometheus" / "rules.yml")
    if name == "api-modules":
        lines = []
        for package, modules in api_modules().items():
            lines.append(f"- [`{package}`]({package}.md)")
            lines += [f"    - [`{m}`]({m}.md)" for m in modules if m != package]
        return "\n".join(lines) + "\n"
    if name == "benchmarks" or name.startswith("benchmarks:"):
        from benchmarks.results import RESULTS, load_all

        records = load_all(RESULTS)
        if name == "benchmarks":
            return bench_doc.overview(records, here)
        return bench_doc.runs(records, name.split(":", 1)[1])
    raise PluginError(f"{here}: no generator named '{name}'")


def _events(here: str, markdown: str) -> str:
    import importlib

    module = importlib.import_module(EVENTS_MODULE)
    names = dict(module.EVENTS)
    if not names:
        raise PluginError(f"{EVENTS_MODULE} defines no event name")
    rest = MARKER.sub("", markdown)
    missing = [v for v in names.values() if f"`{v}`" not in rest]
    if missing:
        raise PluginError(f"{here}: describe the event(s) {', '.join(missing)} (defined in {EVENTS_MODULE})")
    rows = [f"| `{EVENTS_MODULE}.{k}` | `{v}` |" for k, v in names.items()]
    return "| constant | event |\n|---|---|\n" + "\n".join(rows) + "\n"
