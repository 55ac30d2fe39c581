"""The library's shape, read from its source with `ast`: every arrow points down (adapters never
import the composition root, the server or the app above them; below the app, the library never
imports Prefect, tasks or flows), and no module imports itself back through others.

Imports inside functions count: each is an arrow a reader has to follow. Imports under
`TYPE_CHECKING` count as arrows too (a Protocol taken from the layer above is still a dependency
on it), but not as cycles: a checker naming the type it checks in an annotation
(config.checks -> config.params) runs nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import driftline

ROOT = Path(driftline.__file__).resolve().parent

# What each part of the library may not import: the layers above it.
FORBIDDEN = {
    "driftline.config": ("driftline.adapters", "driftline.services", "driftline.serving", "driftline.app"),
    "driftline.core": ("driftline.adapters", "driftline.services", "driftline.serving", "driftline.app"),
    "driftline.errors": ("driftline.adapters", "driftline.services", "driftline.serving", "driftline.app"),
    "driftline.waiting": ("driftline.adapters", "driftline.services", "driftline.serving", "driftline.app"),
    "driftline.adapters": ("driftline.services", "driftline.serving", "driftline.app"),
    "driftline.services": ("driftline.serving", "driftline.app"),
    "driftline.serving": ("driftline.app",),
}
# Only the app starts flows.
NO_ORCHESTRATION = ("prefect", "tasks", "flows", "deployments")


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("driftline", *path.relative_to(root).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _nodes(tree: ast.AST, typing_too: bool):
    """Every node, without the bodies of `if TYPE_CHECKING:` unless `typing_too`."""
    for node in ast.iter_child_nodes(tree):
        if not typing_too and isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                                     "typing.TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in (child, *_nodes(child, typing_too)))
            continue
        yield node
        yield from _nodes(node, typing_too)


def imports(path: Path, known: dict[str, Path], typing_too: bool = True) -> set[str]:
    """Every name `path` imports: a module of the library (`from pkg import mod` is `pkg.mod`), or
    the top-level name of anything else."""
    found = set()
    for node in _nodes(ast.parse(path.read_text(), str(path)), typing_too):
        if isinstance(node, ast.Import):
            found.update(a.name if a.name in known else a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module not in known:
                found.add(node.module.split(".")[0])
                continue
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
    return found


def graph(root: Path = ROOT, typing_too: bool = True) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(path, known, typing_too) for name, path in known.items()}


def upward(edges: dict[str, set[str]]) -> list[str]:
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    def banned(source: str) -> tuple[str, ...]:
        above = tuple(b for part, names in FORBIDDEN.items() if under(source, part) for b in names)
        return above if under(source, "driftline.app") else above + NO_ORCHESTRATION

    return sorted(f"{source} -> {target}" for source, targets in edges.items() for target in targets
                  if any(under(target, b) for b in banned(source)))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_arrow_in_the_library_points_down():
    assert upward(graph()) == []


def test_no_module_of_the_library_imports_itself_back():
    assert cycles(graph(typing_too=False)) == []


def test_the_checks_see_an_upward_import_and_a_cycle(tmp_path):
    """The checks above would fail on the shape this issue removed: the store calling rollout
    policy back (store -> rollout_state -> store) and an adapter importing the composition root."""
    package = tmp_path / "driftline"
    (package / "adapters" / "registry").mkdir(parents=True)
    for path in ("__init__.py", "services.py", "adapters/__init__.py", "adapters/registry/__init__.py"):
        (package / path).write_text("")
    (package / "adapters/registry/store.py").write_text(
        "def register():\n    from driftline.adapters.registry import rollout_state\n")
    (package / "adapters/registry/rollout_state.py").write_text(
        "from driftline.adapters.registry.store import register\n")
    (package / "adapters/registry/rollout_checks.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from driftline.services import PredictionLog\n")
    (package / "adapters/registry/lease.py").write_text(
        "import prefect\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from driftline.adapters.registry.trust import x\n")
    (package / "adapters/registry/trust.py").write_text("from driftline.adapters.registry import lease\n")
    assert cycles(graph(package, typing_too=False)) == [
        ["driftline.adapters.registry.rollout_state", "driftline.adapters.registry.store"]]
    assert upward(graph(package)) == ["driftline.adapters.registry.lease -> prefect",
                                      "driftline.adapters.registry.rollout_checks -> driftline.services"]
