"""The documentation site: it builds with `mkdocs build --strict` (a broken link fails it), its
generated reference covers every config key, CLI option and settings field the code has, the
short commands it shows print what it says they print, and the README is the front page."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.docs_blocks import console_blocks, mismatch

REPO = Path(__file__).resolve().parents[2]
HOOKS = REPO / "docs" / "hooks"
MKDOCS = Path(sys.executable).parent / "mkdocs"
sys.path.insert(0, str(HOOKS))

import cli_doc  # noqa: E402
import env_doc  # noqa: E402
import params_doc  # noqa: E402

ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
                          cwd=config.parent, capture_output=True, text=True, env=ENV, timeout=300)


def test_the_site_builds_strict_with_its_generated_pages(tmp_path):
    done = _build(REPO / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr[-4000:]
    site = tmp_path / "site"
    params = (site / "reference" / "params" / "index.html").read_text()
    assert "training.search.trials" in params and "rollout.smoke_requests" in params
    assert "--lease-wait" in (site / "reference" / "cli" / "index.html").read_text()
    assert "DRIFTLINE_SERVE_MAX_BATCH" in (site / "reference" / "environment" / "index.html").read_text()
    assert "DriftlineRolloutLeaseHeldTooLong" in (site / "operations" / "alerts" / "index.html").read_text()
    # One page per library module, rendered from its docstrings.
    training = (site / "reference" / "api" / "driftline.core.training" / "index.html").read_text()
    assert "build_pipeline" in training and "the registered model computes everything" in training
    assert (site / "reference" / "api" / "driftline.services" / "index.html").is_file()
    # The benchmarks pages drawn from benchmarks/results/*.json.
    overview = (site / "benchmarks" / "index.html").read_text()
    for benchmark in ("pipeline", "serving", "monitor", "search", "features", "s3", "team_loop", "suite"):
        assert f">{benchmark}<" in overview, benchmark


def _linked_copy(tmp_path: Path) -> Path:
    """The repository's docs and mkdocs.yml in a temporary directory (the code beside it linked),
    to break on purpose."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    for name in ("driftline", "benchmarks", "ops", "deployments", "flows", "tasks", "scripts"):
        (root / name).symlink_to(REPO / name)
    return root


def test_a_broken_link_fails_the_build(tmp_path):
    root = _linked_copy(tmp_path)
    page = root / "docs" / "guides" / "drift.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    done = _build(root / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr, done.stderr[-2000:]


def test_a_marker_without_a_generator_fails_the_build(tmp_path):
    root = _linked_copy(tmp_path)
    page = root / "docs" / "reference" / "cli.md"
    page.write_text(page.read_text() + "\n<!-- generated: no-such-block -->\n")
    done = _build(root / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "no generator named 'no-such-block'" in done.stderr, done.stderr[-2000:]


def _driftline(*args: str, columns: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "driftline.app.cli", *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": str(columns)}, timeout=120)


def test_every_console_block_of_driftline_prints_what_the_docs_show():
    blocks = console_blocks()
    ran = 0
    for shown in blocks:
        words = shlex.split(shown.command)
        if words[:2] == ["uv", "run"]:
            words = words[2:]
        if words[0] == "curl":
            continue  # against a live model server: tests/integration/test_docs_curl.py
        assert words[0] == "driftline", f"{shown.page}: a console block runs only short driftline commands or a curl"
        done = _driftline(*words[1:])
        problem = mismatch(shown.output, done.stdout + done.stderr)
        assert problem is None, f"{shown.page}: $ {shown.command}\n{problem}"
        ran += 1
    assert ran >= 3, [b.command for b in blocks]


def test_config_schema_prints_the_schema_the_params_reference_is_drawn_from():
    from driftline.config import params_schema

    done = _driftline("config", "--schema")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == params_schema()


def _models(annotation, seen: set) -> None:
    """Every pydantic model reachable from an annotation (unions, lists, mappings included)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        for field in annotation.model_fields.values():
            _models(field.annotation, seen)
        return
    for arg in typing.get_args(annotation):
        _models(arg, seen)


def test_the_params_reference_lists_every_field_of_every_config_model():
    from driftline.config import Params, params_schema

    page = params_doc.render(params_schema())
    models: set = set()
    _models(Params, models)
    assert len(models) > 25
    def listed(name: str, field) -> bool:
        if f".{field.alias or name}`" in page or f"## `{name}`" in page:
            return True
        # A union's tag (`kind`, `strategy`): a heading per member instead of a row.
        tags = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else ()
        return bool(tags) and all(f"`{name}: {tag}`" in page for tag in tags)

    missing = [f"{m.__name__}.{name}" for m in models for name, f in m.model_fields.items() if not listed(name, f)]
    assert missing == []


def test_the_cli_reference_lists_every_command_and_every_option_help_shows():
    from driftline.app.cli import app

    page = cli_doc.render(app)
    sections = re.split(r"^## ", page, flags=re.MULTILINE)
    commands = re.findall(r"^\│ (\w+) ", _driftline("--help").stdout, flags=re.MULTILINE)
    assert len(commands) == len(app.registered_commands), commands
    seen = 0
    for command in commands:
        section = next(s for s in sections if s.startswith(f"`driftline {command}`"))
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", _driftline(command, "--help").stdout)) - {"--help"}
        seen += len(options)
        assert {o for o in options if f"`{o}`" not in section} == set(), command
    assert seen > 20  # the options were read off the help at all


def test_the_environment_reference_lists_every_settings_field():
    page = env_doc.render(REPO)
    for module, name in env_doc.SETTINGS:
        import importlib

        cls = getattr(importlib.import_module(module), name)
        prefix = cls.model_config["env_prefix"]
        for field, info in cls.model_fields.items():
            if env_doc._is_settings(info.annotation):
                continue
            assert f"`{prefix}{field.upper()}`" in page, (name, field)
    assert "`DRIFTLINE_NOTIFY_WEBHOOK_URL`" in page  # read outside the settings classes, found by the scan


def _prose(text: str) -> str:
    """A page without its code: fenced blocks and inline code."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


DATED = re.compile(r"\b20\d\d-\d\d-\d\d\b")
HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def test_the_readme_is_a_front_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text and ".ci/run" in text
    assert DATED.findall(_prose(text)) == [] and HASH.findall(_prose(text)) == []
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (REPO / target).exists(), target


@pytest.mark.parametrize("page", sorted(p.relative_to(REPO / "docs").as_posix()
                                        for p in (REPO / "docs").rglob("*.md")))
def test_no_commit_hash_or_dated_run_in_the_docs_prose(page):
    prose = _prose((REPO / "docs" / page).read_text())
    assert DATED.findall(prose) == [], page
    assert HASH.findall(prose) == [], page
