"""The docs' console blocks: a short command (`$ ...`) and what it prints, which the tests run
and compare line by line, in order, `…` standing for any text (docs/development/docs.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Shown:
    page: str
    command: str
    output: list[str]


def console_blocks(docs: Path = DOCS) -> list[Shown]:
    out = []
    for page in sorted(docs.rglob("*.md")):
        for block in FENCE.findall(page.read_text()):
            command, lines = None, []
            for line in block.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        out.append(Shown(str(page.relative_to(docs)), command, lines))
                    command, lines = line[2:], []
                elif command is not None:
                    lines.append(line)
            if command is not None:
                out.append(Shown(str(page.relative_to(docs)), command, lines))
    return out


def _pattern(expected: str) -> re.Pattern:
    parts = [re.escape(p) for p in expected.strip().split("…")]
    return re.compile(".*".join(parts))


def mismatch(expected: list[str], printed: str) -> str | None:
    """None when every expected line matches a printed line, in order; else what did not."""
    lines = [line.strip() for line in printed.splitlines()]
    at = 0
    for want in (e for e in expected if e.strip()):
        pattern = _pattern(want)
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return f"no line matching {want!r} (in order) in:\n{printed}"
        at += 1
    return None
