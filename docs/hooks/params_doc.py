"""The params.yaml reference, drawn from the config schema (`driftline.config.params_schema()`):
every key with its type, default and description, nested sections as dotted keys, and each
`kind` (or `strategy`) union with the keys every member takes and the keys of each member."""

from __future__ import annotations

import json
from typing import Any

from mdtext import cell

NO_DEFAULT = object()


def render(schema: dict[str, Any]) -> str:
    doc = _Doc(schema)
    out = []
    required = set(schema.get("required", []))
    for name, node in schema["properties"].items():
        out.append(f"## `{name}`\n")
        model = doc.resolve(node)
        if model.get("description"):
            out.append(_text(model["description"]) + "\n")
        out.append("Required.\n" if name in required else "Optional: every key below has a default.\n")
        out.append(doc.section(name, node))
    return "\n".join(out)


class _Doc:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs = schema.get("$defs", {})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = {**self.defs[node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def section(self, path: str, node: dict[str, Any]) -> str:
        """A table of the keys under `path`, then a subsection per union met on the way."""
        rows: list[tuple[str, str, str, str]] = []
        unions: list[tuple[str, dict[str, Any]]] = []
        self._rows(path, node, rows, unions, top=True)
        out = [_table(rows)] if rows else []
        for where, union in unions:
            out.append(self._union(where, union))
        return "\n".join(out)

    def _rows(self, path: str, node: dict[str, Any], rows: list, unions: list, top: bool = False,
              required: bool = False) -> None:
        node = self.resolve(node)
        section = _optional_section(node, self)
        if section is not None:  # an optional nested section (a model, or null)
            rows.append((path, "section (or null)", _default(node, required), _text(node.get("description", ""))
                         + " Its keys are below."))
            self._rows(path, section, rows, unions, required=True)
            return
        union = _union_of(node)
        if union is not None:
            if not top:
                rows.append((path, f"one of: {', '.join(f'`{k}`' for k in union['tags'])}",
                             _default(node, required), _text(node.get("description", ""))
                             + f" Chosen by `{union['key']}`; the keys of each are below."))
            unions.append((path, union))
            return
        if _object(node) and not (top is False and node.get("additionalProperties") not in (None, False)):
            props = node.get("properties", {})
            if not top and not props:
                rows.append((path, "mapping", _default(node, required), _text(node.get("description", ""))))
                return
            if not top:
                rows.append((path, "section", _default(node, required), _text(node.get("description", ""))
                             + " Its keys follow."))
            needed = set(node.get("required", []))
            for key, child in props.items():
                self._rows(f"{path}.{key}", child, rows, unions, required=key in needed)
            return
        if _object(node) and isinstance(node.get("additionalProperties"), dict):  # a mapping of named entries
            value = self.resolve(node["additionalProperties"])
            slot = "<metric>" if path.endswith("thresholds") else "<parameter>"
            rows.append((path, "mapping", _default(node, required), _text(node.get("description", ""))))
            alternatives = [self.resolve(v) for v in value.get("anyOf", [value])]
            for alt in alternatives:
                title = f" ({alt['title']})" if len(alternatives) > 1 and alt.get("title") else ""
                for key, child in alt.get("properties", {}).items():
                    needed = key in alt.get("required", [])
                    desc = child.get("description", "") or (alt.get("description", "") if key == next(iter(
                        alt["properties"])) else "")
                    rows.append((f"{path}.{slot}.{key}", _type(self.resolve(child)) + title,
                                 _default(child, needed), _text(desc)))
            return
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            item = self.resolve(node["items"])
            if _union_of(item) is not None or (_object(item) and item.get("properties")):
                rows.append((path, "list", _default(node, required), _text(node.get("description", ""))
                             + " Each entry's keys are below."))
                self._rows(f"{path}[]", item, rows, unions, required=True)
                return
        rows.append((path, _type(node), _default(node, required), _text(node.get("description", ""))))

    def _union(self, path: str, union: dict[str, Any]) -> str:
        members = {tag: self.resolve({"$ref": ref}) for tag, ref in union["mapping"].items()}
        key = union["key"]
        shared = None
        for member in members.values():
            props = {k: json.dumps(v, sort_keys=True) for k, v in member.get("properties", {}).items() if k != key}
            shared = props if shared is None else {k: v for k, v in shared.items() if props.get(k) == v}
        shared = shared or {}
        out = [f"### `{path}` by `{key}`\n",
               f"`{key}` chooses which keys the entry takes: " + ", ".join(f"`{t}`" for t in members) + ".\n"]
        any_member = next(iter(members.values()))
        if shared:
            out.append(f"Keys every `{key}` takes:\n")
            rows: list = []
            for name in shared:
                self._rows(f"{path}.{name}", any_member["properties"][name], rows, [],
                           required=name in any_member.get("required", []))
            out.append(_table(rows))
        for tag, member in members.items():
            out.append(f"#### `{key}: {tag}`\n")
            if member.get("description"):
                out.append(_text(member["description"]) + "\n")
            rows = []
            inner: list = []
            needed = set(member.get("required", []))
            own = [k for k in member.get("properties", {}) if k not in shared and k != key]
            for name in own:
                self._rows(f"{path}.{name}", member["properties"][name], rows, inner, required=name in needed)
            out.append(_table(rows) if rows else f"No keys beside `{key}`" + (" and the shared ones." if shared
                                                                                 else ".") + "\n")
            for where, nested in inner:
                out.append(self._union(where, nested))
        return "\n".join(out)


def _optional_section(node: dict[str, Any], doc: _Doc) -> dict[str, Any] | None:
    alternatives = [a for a in node.get("anyOf", []) if a.get("type") != "null"]
    if len(alternatives) == 1 and len(node["anyOf"]) == 2:
        inner = doc.resolve(alternatives[0])
        if _object(inner) and inner.get("properties"):
            return inner
    return None


def _union_of(node: dict[str, Any]) -> dict[str, Any] | None:
    disc = node.get("discriminator")
    if not disc:
        return None
    mapping = disc["mapping"]
    return {"key": disc["propertyName"], "mapping": mapping, "tags": list(mapping)}


def _object(node: dict[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _type(node: dict[str, Any]) -> str:
    if "anyOf" in node:
        kinds = [_type(n) for n in node["anyOf"] if n.get("type") != "null"]
        optional = any(n.get("type") == "null" for n in node["anyOf"])
        return " or ".join(kinds) + (" (or null)" if optional else "")
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "any")
    if kind == "array":
        item = node.get("items", {})
        kind = f"list of {_type(item) if item else 'values'}"
    elif kind == "object":
        kind = "mapping"
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"),
                      ("minItems", "items ≥"), ("minLength", "length ≥"), ("minProperties", "entries ≥")):
        if key in node:
            bounds.append(f"{sign} {node[key]}")
    if "pattern" in node:
        bounds.append(f"matching `{node['pattern']}`")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _default(node: dict[str, Any], required: bool) -> str:
    if "default" not in node:
        return "required" if required else "optional"
    value = node["default"]
    if isinstance(value, dict) and len(json.dumps(value)) > 40:
        return "its keys' defaults"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _text(text: str) -> str:
    return cell(text)


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, kind, default, desc in rows:
        lines.append(f"| `{key}` | {kind.replace('|', chr(92) + '|')} | {default} | {desc} |")
    return "\n".join(lines) + "\n"
