"""What a request may contain: JSON parsed with limits, records in the documented shapes, and each
record checked and rebuilt from the model's input columns before it goes near a batch or the log.

A record dict is never passed on as the client sent it: `intake` returns new dicts holding only
the model's columns, typed (finite floats or None, encodable strings or None), so a log row built
from them cannot carry a client's `variant` or `timestamp`, and cannot fail to encode."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime

from driftline.config import Feature
from driftline.core import features as derived

FLOAT_MAX = sys.float_info.max
ISO_DATE = re.compile(derived.ISO_DATE)


class BadInput(ValueError):
    """The request's own fault: answered 422 with this message (it never holds exception text)."""


class TooMany(BadInput):
    """More records than the server takes in one request: answered 413."""


def json_content_type(value: bytes) -> bool:
    """`application/json` or `application/<anything>+json`, parameters ignored. Anything else is 415:
    `text/plain` and form posts are what a web page can send cross-site without a preflight."""
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def parse_json(body: bytes, nan_as_missing: bool = False) -> object:
    """The body as JSON, or BadInput saying why in words of our own. With `nan_as_missing`, the
    non-standard `NaN` reads as null (a missing value): it is how pandas and NumPy clients, such
    as MLflow's and Triton's, write a missing number. `Infinity` is read, and refused later."""
    try:
        return json.loads(body, parse_constant=_missing_nan) if nan_as_missing else json.loads(body)
    except RecursionError:  # "[" * 100000: the C scanner gives up ~1000 levels down
        raise BadInput("body is nested too deeply to be a request") from None
    except UnicodeDecodeError:
        raise BadInput("body is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as err:
        raise BadInput(f"body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except ValueError:  # an integer of more than 4300 digits: int() refuses to read it
        raise BadInput("body holds a number too large to read") from None


def _missing_nan(name: str) -> float | None:
    return None if name == "NaN" else float(name)


def parse_records(body: object, max_records: int = 10_000) -> list[dict]:
    """One record, a list of records, MLflow's `dataframe_records` or `dataframe_split`."""
    if isinstance(body, dict) and "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
                or not isinstance(split.get("data"), list):
            raise BadInput("dataframe_split needs 'columns' (a list) and 'data' (a list of rows)")
        columns = split["columns"]
        if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
            raise BadInput("dataframe_split.columns must be distinct strings")
        if not split["data"]:
            raise BadInput("dataframe_split.data holds no rows")
        _check_count(len(split["data"]), max_records)
        rows = []
        for i, row in enumerate(split["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise BadInput(f"dataframe_split.data[{i}] must be a list of {len(columns)} values")
            rows.append(dict(zip(columns, row, strict=True)))
        return rows
    if isinstance(body, dict) and "dataframe_records" in body:
        body = body["dataframe_records"]
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list) and body and all(isinstance(r, dict) for r in body):
        _check_count(len(body), max_records)
        return body
    raise BadInput("expected a JSON object (one record), a non-empty list of records, "
                   "or {'dataframe_split': {...}}")


def _check_count(n: int, max_records: int) -> None:
    if n > max_records:
        raise TooMany(f"{n} records in one request; at most {max_records} (DRIFTLINE_SERVE_MAX_RECORDS)")


def ranges(features: list[Feature]) -> dict[str, tuple[float, float]]:
    """The declared [min, max] of each numeric feature that has a bound."""
    return {f.name: (-math.inf if f.min is None else f.min, math.inf if f.max is None else f.max)
            for f in features if f.type == "numeric" and (f.min is not None or f.max is not None)}


@dataclass(frozen=True)
class Policy:
    known: frozenset[str] | None = None  # input names of every served model; None: unknown keys not checked
    drop_unknown: bool = False
    categories: dict[str, set] | None = None  # with it, a category outside these is refused
    ranges: dict[str, tuple[float, float]] | None = None
    reject_out_of_range: bool = False
    datetimes: frozenset[str] = frozenset()  # datetime features: ISO 8601 text only


def intake(records: list[dict], columns: dict[str, str], policy: Policy = Policy()) -> tuple[list[dict], list[str]]:
    """New records holding only `columns` (typed), and per record the out-of-range fields
    (comma-joined, "" when none). BadInput names the record and the field."""
    clean, flagged = [], []
    bounds = policy.ranges or {}
    categories = policy.categories or {}
    for i, record in enumerate(records):
        if policy.known is not None and not policy.drop_unknown and not record.keys() <= policy.known:
            extra = sorted(record.keys() - policy.known)
            named = ", ".join(_show(k) for k in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            raise BadInput(f"record {i}: unknown field{'s' if len(extra) > 1 else ''} {named}; a record holds "
                           "only the model's input columns (DRIFTLINE_SERVE_UNKNOWN_FIELDS=drop ignores others)")
        row, outside = {}, ""
        for name, kind in columns.items():
            try:
                value = record[name]
            except KeyError:
                raise BadInput(f"record {i}: missing field {name!r}") from None
            if value is None:
                pass
            elif kind == "double":
                value = _number(value, i, name)
                if name in bounds and not bounds[name][0] <= value <= bounds[name][1]:
                    low, high = bounds[name]
                    if policy.reject_out_of_range:
                        raise BadInput(f"record {i}: field {name!r} is {value:g}, outside its declared range "
                                       f"[{low:g}, {high:g}] (data.features)")
                    outside = f"{outside},{name}" if outside else name
            elif type(value) is not str:
                raise BadInput(f"record {i}: field {name!r} must be a string, got {_show(value)}")
            else:
                if not value.isascii():
                    try:
                        value.encode()
                    except UnicodeEncodeError:  # a lone surrogate ("\udfff") that JSON allowed
                        raise BadInput(f"record {i}: field {name!r} is not valid Unicode text") from None
                if name in policy.datetimes and not _iso_date(value):
                    raise BadInput(f"record {i}: field {name!r} must be an ISO 8601 date or time "
                                   f"(e.g. '2026-01-31' or '2026-01-31T09:30:00Z'), got {_show(value)}")
                if name in categories and value not in categories[name]:
                    known = sorted(categories[name])
                    shown = ", ".join(map(repr, known[:20])) + (", ..." if len(known) > 20 else "")
                    raise BadInput(f"record {i}: field {name!r} has unknown category {_show(value)} (known: {shown})")
            row[name] = value
        clean.append(row)
        flagged.append(outside)
    return clean, flagged


def _iso_date(value: str) -> bool:
    """What the model's derive step reads as a time (core.features.when), checked here so that
    a value it would silently read as missing is refused with a reason instead."""
    if not ISO_DATE.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _number(value: object, i: int, name: str) -> float:
    if type(value) is float:  # `type(...) is`, not isinstance: a bool is no number here
        if not math.isfinite(value):
            raise BadInput(f"record {i}: field {name!r} must be finite, got {value!r}")
        return value
    if type(value) is int:
        if not -FLOAT_MAX <= value <= FLOAT_MAX:  # int-float comparison is exact: no overflow here
            raise BadInput(f"record {i}: field {name!r} is beyond the range of a float")
        return float(value)
    raise BadInput(f"record {i}: field {name!r} must be a number, got {_show(value)}")


def _show(value: object) -> str:
    """A client's value, quoted and cut short: error bodies must stay small and printable."""
    if isinstance(value, list | dict):  # never repr a nested value: its depth is the client's choice
        return "a JSON array" if isinstance(value, list) else "a JSON object"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

