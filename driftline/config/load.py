"""Reading `params.yaml`: `--set KEY=VALUE` overrides, validation, and errors that name each dotted key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from driftline.config.params import Params


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the key and the reason."""


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        # Discriminated unions put the chosen tag into the location; it is noise to a user.
        loc = ".".join(str(p) for p in e["loc"] if p not in {"hist_gradient_boosting", "random_forest",
                                                                "logistic_regression", "ridge",
                                                                "invariance", "directional",
                                                                "minimum_functionality"})
        msg = e["msg"].removeprefix("Value error, ")
        if not loc:
            # Whole-config checks name their own dotted keys, one problem a line.
            lines += msg.splitlines()
        else:
            lines.append(f"{loc}: {msg}")
    return "\n".join(lines)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `KEY=VALUE` overrides (dotted keys, YAML values) to a raw params dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.seed=7")
        parts = key.split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])} is not a mapping")
        node[parts[-1]] = yaml.safe_load(value)
    return raw


def parse_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source} is invalid:\n{_format_errors(err)}") from None


def load_params(path: str | Path, overrides: list[str] | None = None) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if isinstance(raw, dict):
        raw = apply_overrides(raw, list(overrides or []))
    return parse_params(raw, str(path))


def params_schema() -> dict[str, Any]:
    return Params.model_json_schema()


