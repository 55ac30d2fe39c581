"""Reading `params.yaml`: `--set KEY=VALUE` overrides, validation, and errors that name each dotted key."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, cast

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import ValidationError

from driftline.config.params import RENAMED, Params, renamed_warning


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the key and the reason."""


@functools.cache
def _union_members() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Each tag of a discriminated union in the params (estimator kinds, behavioral kinds, strategies),
    read from the schema: the tags of its union, and its own keys."""
    schema = Params.model_json_schema()
    members = {}
    todo: list[Any] = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            mapping = node.get("discriminator", {}).get("mapping", {})
            for tag, ref in mapping.items():
                members[tag] = (frozenset(mapping), frozenset(schema["$defs"][ref.rsplit("/", 1)[1]]["properties"]))
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return members


def _other_owners(e: Any) -> str:
    """For a key another member of the same union has: which ones ("steps" under shadow: canary)."""
    tags = [p for p in e["loc"] if p in _union_members()]
    if e["type"] != "extra_forbidden" or not tags:
        return ""
    union, _ = _union_members()[tags[-1]]
    owners = [t for t in sorted(union) if t != tags[-1] and e["loc"][-1] in _union_members()[t][1]]
    return f" (a key of {', '.join(owners)}, not of {tags[-1]})" if owners else ""


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        # Discriminated unions put the chosen tag into the location; it is noise to a user.
        loc = ".".join(str(p) for p in e["loc"] if p not in _union_members())
        msg = e["msg"].removeprefix("Value error, ") + _other_owners(e)
        if e["type"] == "union_tag_invalid":  # e.g. "strategy 'big-bang' is not one of canary, shadow, blue-green"
            ctx = e["ctx"]
            msg = f"{ctx['discriminator'].strip(chr(39))} {ctx['tag']!r} is not one of " \
                  f"{ctx['expected_tags'].replace(chr(39), '')}"
        if not loc:
            # Whole-config checks name their own dotted keys, one problem a line.
            lines += msg.splitlines()
        else:
            lines.append(f"{loc}: {msg}")
    return "\n".join(lines)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `KEY=VALUE` overrides (dotted keys, list indexes as numbers, YAML values) to `raw`, in place.

    OmegaConf parses each item and sets it. A value replaces what was at its key rather than
    merging into it (`training.estimator={kind: ridge}` drops the old estimator's parameters),
    so this is `OmegaConf.update(merge=False)` per item, not one `OmegaConf.merge` of the dotlist.
    """
    if not overrides:
        return raw
    conf = OmegaConf.create(raw)
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.seed=7")
        parts = key.split(".")
        if parts[0] in RENAMED:
            renamed_warning(f"{parts[0]}.", f"{RENAMED[parts[0]]}.", f"--set {key}")
            parts[0] = RENAMED[parts[0]]
            key, item = ".".join(parts), ".".join(parts) + item[len(key):]
        # OmegaConf would silently turn a number into a mapping to hold the key: refuse instead.
        blocked = _not_a_mapping(OmegaConf.to_container(conf, resolve=False), parts)
        if blocked:
            raise ConfigError(f"--set {key}: {blocked} is not a mapping")
        try:
            value: Any = OmegaConf.to_container(OmegaConf.from_dotlist([item]), resolve=False)
            for part in parts:
                value = value[part]
            OmegaConf.update(conf, key, value, merge=False)
        except OmegaConfBaseException as err:
            raise ConfigError(f"--set {key}: {str(err).splitlines()[0]}") from None
    raw.clear()
    raw.update(cast("dict[str, Any]", OmegaConf.to_container(conf, resolve=False)))  # a mapping in, a mapping out
    return raw


def _not_a_mapping(node: Any, parts: list[str]) -> str | None:
    """The first prefix of a dotted key that cannot hold the rest of it, if any."""
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part, {})
        else:
            return ".".join(parts[: i + 1])
    return None if isinstance(node, dict) else ".".join(parts[:-1])


def parse_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source} is invalid:\n{_format_errors(err)}") from None


def load_params(path: str | Path, overrides: list[str] | None = None, read_code: bool = True) -> Params:
    """The params file with `overrides` applied, validated, and the project code it names read
    (`read_code=False` for a process that only runs models: they carry their own code)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if isinstance(raw, dict):
        raw = apply_overrides(raw, list(overrides or []))
    params = parse_params(raw, str(path))
    problems = attach_user_code(params, path.resolve().parent) if read_code else []
    if problems:
        raise ConfigError(f"{path} is invalid:\n" + "\n".join(problems))
    return params


def attach_user_code(params: Params, root: Path) -> list[str]:
    """Read the source of every piece of project code the params name (`kind: custom` derived
    features, a `kind: custom` estimator's factory) from the project (the params file's folder),
    checking without running it that the module defines what is named. The problems, each naming
    its key."""
    problems: list[str] = []
    for i, d in enumerate(params.data.derived):
        if d.kind == "custom":
            found = _read_module(root, d.module, d.attribute, f"data.derived.{i}.function", problems)
            if found:
                d._source, d._path = found[0], found[1]
    est = params.training.estimator
    if est.kind == "custom":
        found = _read_module(root, est.module, est.attribute, "training.estimator.factory", problems)
        if found:
            est._source, est._path = found[0], found[1]
            names = [*est.params, *(params.training.search.space if params.training.search
                                    and params.training.search.enabled else [])]
            problems += _unknown_arguments(found[2], est.factory, names)
    return problems


def _read_module(root: Path, module: str, attribute: str, key: str, problems: list[str]):
    """(source, path, the attribute's AST node) of `module` inside the project, or None with the
    problem appended. A module outside the project (a symlink out of it) is refused: code named
    by configuration runs only from the repository the params belong to."""
    import ast

    file = root.joinpath(*module.split(".")).with_suffix(".py")
    if not file.resolve().is_relative_to(root.resolve()):
        problems.append(f"{key}: module {module!r} resolves to {file.resolve()}, outside the project {root}")
        return None
    try:
        source = file.read_text()
        tree = ast.parse(source, str(file))
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{key}: module {module!r} should be {file} ({type(err).__name__})")
        return None
    except SyntaxError as err:
        problems.append(f"{key}: {file} does not parse: {err.msg} (line {err.lineno})")
        return None
    nodes: dict[str, ast.stmt] = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    nodes |= {t.id: n for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    if attribute not in nodes:
        problems.append(f"{key}: {file} defines no {attribute!r} at its top level")
        return None
    return source, str(file), nodes[attribute]


def _unknown_arguments(node, factory: str, names: list[str]) -> list[str]:
    """Parameters the factory's signature cannot take (read from its source, not by calling it)."""
    import ast

    if not isinstance(node, ast.FunctionDef) or node.args.kwarg is not None:
        return []
    takes = [a.arg for a in [*node.args.args, *node.args.kwonlyargs]]
    return [f"training.estimator.params.{name}: {factory} takes no parameter {name!r} "
            f"(it takes: {', '.join(takes) or 'none'})" for name in dict.fromkeys(names) if name not in takes]


def code_changes(written: Params, overridden: Params) -> list[str]:
    """The keys naming code (the estimator's kind, class or factory; a custom derived feature's
    function) whose value the overrides changed: a deployment run may tune, never choose what runs."""
    def code(p: Params) -> dict[str, object]:
        est = p.training.estimator
        out = {"training.estimator.kind": est.kind, "training.estimator.class": getattr(est, "class_", None),
               "training.estimator.factory": getattr(est, "factory", None)}
        out["data.derived (custom functions)"] = sorted((d.name, d.function) for d in p.data.derived
                                                        if d.kind == "custom")
        return out
    before, after = code(written), code(overridden)
    return [key for key in before if before[key] != after[key]]


def params_schema() -> dict[str, Any]:
    return Params.model_json_schema()


