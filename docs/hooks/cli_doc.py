"""The CLI reference, drawn from the Typer app (`driftline.app.cli:app`) as `--help` sees it:
every command with its help text (Markdown, as the help renders it) and every option with its
type, range, default and help."""

from __future__ import annotations

import inspect
from pathlib import PurePath
from typing import Any

import typer
from mdtext import cell

PROG = "driftline"


def render(app: typer.Typer) -> str:
    from typer import _click as click  # the click Typer vendors (its parameters have Typer's own API)

    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name=PROG)
    names = group.list_commands(ctx)
    out = [_clean(group.help or ""), "", "| command | what it does |", "|---|---|"]
    for name in names:
        command = group.get_command(ctx, name)
        out.append(f"| [`{PROG} {name}`](#{PROG}-{name}) | {_summary(command.help or '')} |")
    out.append("")
    out.append("Every command takes `--help`, which prints what this page says about it.\n")
    for name in names:
        command = group.get_command(ctx, name)
        sub = click.Context(command, info_name=f"{PROG} {name}", parent=None)
        out.append(f"## `{PROG} {name}` {{#{PROG}-{name}}}\n")
        out.append(_clean(command.help or "") + "\n")
        out.append("```text\n" + command.get_usage(sub).removeprefix("Usage: ") + "\n```\n")
        rows = [_option(p, sub) for p in command.params if getattr(p, "opts", None) and not p.hidden]
        if rows:
            out.append("| option | type | default | description |\n|---|---|---|---|")
            out.extend(rows)
            out.append("")
    return "\n".join(out)


def _option(param: Any, ctx: Any) -> str:
    names = " / ".join(", ".join(f"`{o}`" for o in opts) for opts in (param.opts, param.secondary_opts) if opts)
    kind = param.display_type(ctx).strip("<>")
    if param.is_flag:
        kind = "flag"
    if param.multiple:
        kind = kind.removeprefix("list[").removesuffix("]") + ", repeatable"
    bounds = [f"≥ {param.min}" if param.min is not None else "", f"≤ {param.max}" if param.max is not None else ""]
    if any(bounds):
        kind += " (" + ", ".join(b for b in bounds if b) + ")"
    default = param.get_default(ctx)
    if param.required:
        shown = "required"
    elif default is None or default == [] or default == ():
        shown = "—"
    elif param.is_flag and param.secondary_opts:
        shown = f"`{param.opts[0] if default else param.secondary_opts[0]}`"
    elif isinstance(default, PurePath):
        shown = f"`{default}`"
    else:
        shown = f"`{str(default).lower() if isinstance(default, bool) else default}`"
    return f"| {names} | {kind} | {shown} | {_cell(param.help or '')} |"


def _clean(text: str) -> str:
    return inspect.cleandoc(text).partition("\f")[0]


def _summary(text: str) -> str:
    return _cell(_clean(text).split("\n\n")[0])


def _cell(text: str) -> str:
    return cell(text)
