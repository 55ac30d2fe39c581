"""The request checks of the model server, without a server."""

from __future__ import annotations

import math

import pytest

from driftline.config import Feature
from driftline.serving.intake import (
    BadInput,
    Policy,
    TooMany,
    intake,
    json_content_type,
    parse_json,
    parse_records,
    ranges,
)

COLUMNS = {"age": "double", "region": "string"}
KNOWN = {"region": {"north", "south"}}


def test_records_come_in_every_documented_shape():
    one = {"age": 30.0, "region": "north"}
    assert parse_records(one) == [one]
    assert parse_records([one, one]) == [one, one]
    assert parse_records({"dataframe_records": [one]}) == [one]
    assert parse_records({"dataframe_split": {"columns": ["age", "region"], "data": [[30.0, "north"]]}}) == [one]


@pytest.mark.parametrize("body", [[], "x", 3, [1], {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}},
                                  {"dataframe_split": {"columns": [["a"]], "data": [[1]]}},
                                  {"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}},
                                  {"dataframe_split": {"columns": [], "data": []}}])
def test_other_shapes_are_refused(body):
    with pytest.raises(BadInput):
        parse_records(body)


def test_too_many_records_are_refused_before_any_is_read():
    with pytest.raises(TooMany, match="3 records in one request; at most 2"):
        parse_records([{}, {}, {}], max_records=2)
    with pytest.raises(TooMany):
        parse_records({"dataframe_split": {"columns": ["a"], "data": [[1]] * 3}}, max_records=2)


@pytest.mark.parametrize(("body", "needle"), [
    (b"[" * 100_000, "nested too deeply"),
    (b"1" * 5000, "number too large"),
    (b'{"a": "\xff"}', "not valid UTF-8"),
    (b"{'a': 1}", "not valid JSON"),
])
def test_json_is_read_with_limits_and_errors_in_our_own_words(body, needle):
    with pytest.raises(BadInput, match=needle):
        parse_json(body)


@pytest.mark.parametrize(("record", "needle"), [
    ({"region": "north"}, "missing field 'age'"),
    ({"age": "30", "region": "north"}, "'age' must be a number"),
    ({"age": True, "region": "north"}, "'age' must be a number"),
    ({"age": [30], "region": "north"}, "'age' must be a number, got a JSON array"),
    ({"age": float("inf"), "region": "north"}, "'age' must be finite"),
    ({"age": 10**400, "region": "north"}, "'age' is beyond the range of a float"),
    ({"age": 30, "region": 4}, "'region' must be a string"),
    ({"age": 30, "region": "\udfff"}, "'region' is not valid Unicode text"),
])
def test_signature_violations_name_the_field(record, needle):
    with pytest.raises(BadInput, match=needle):
        intake([record], COLUMNS)


def test_records_are_rebuilt_from_the_model_columns_only_and_typed():
    clean, flagged = intake([{"age": 30, "region": "north", "variant": "x"}], COLUMNS)
    assert clean == [{"age": 30.0, "region": "north"}] and type(clean[0]["age"]) is float and flagged == [""]
    known = Policy(known=frozenset(COLUMNS))
    with pytest.raises(BadInput, match="record 0: unknown fields 'status', 'variant'"):
        intake([{"age": 30, "region": "north", "variant": "x", "status": "error"}], COLUMNS, known)
    dropped = Policy(known=frozenset(COLUMNS), drop_unknown=True)
    assert intake([{"age": 30, "region": "north", "variant": "x"}], COLUMNS, dropped)[0] == [
        {"age": 30.0, "region": "north"}]


def test_unknown_categories_pass_unless_the_policy_rejects_them():
    record = {"age": 30, "region": "atlantis"}
    intake([record], COLUMNS)  # allowed: the model treats it as missing
    with pytest.raises(BadInput, match=r"record 0: field 'region' has unknown category 'atlantis' \(known: 'north'"):
        intake([record], COLUMNS, Policy(categories=KNOWN))
    intake([{"age": None, "region": None}], COLUMNS, Policy(categories=KNOWN))  # missing is not unknown


def test_numbers_outside_the_declared_range_are_flagged_or_refused():
    bounds = ranges([Feature(name="age", type="numeric", min=18, max=100), Feature(name="income", type="numeric"),
                     Feature(name="region", type="categorical")])
    assert bounds == {"age": (18, 100)}
    columns = {"age": "double", "income": "double"}
    _, flagged = intake([{"age": 150, "income": 1e9}, {"age": 40, "income": 0}, {"age": None, "income": 1}],
                        columns, Policy(ranges=bounds))
    assert flagged == ["age", "", ""]
    with pytest.raises(BadInput, match=r"record 0: field 'age' is 17.5, outside its declared range \[18, 100\]"):
        intake([{"age": 17.5, "income": 1}], columns, Policy(ranges=bounds, reject_out_of_range=True))
    assert ranges([Feature(name="rate", type="numeric", min=0)]) == {"rate": (0, math.inf)}


@pytest.mark.parametrize(("value", "ok"), [
    (b"application/json", True), (b"Application/JSON; charset=utf-8", True), (b"application/vnd.api+json", True),
    (b"text/plain", False), (b"", False), (b"application/x-www-form-urlencoded", False), (b"text/json", False),
])
def test_only_json_media_types_are_accepted(value, ok):
    assert json_content_type(value) is ok


@pytest.mark.parametrize("value", ["now", "today", "03/15/2024", "2024-13-01", "2024-03-15 soon", "20240315"])
def test_a_datetime_feature_takes_iso_8601_text_only(value):
    """What the model's derive step would read as missing (or as the clock) is refused, named."""
    columns = {"applied": "string", "age": "double"}
    policy = Policy(datetimes=frozenset({"applied"}))
    for good in ("2024-03-15", "2024-03-15T09:30:00Z", "2024-03-15 09:30:00+02:00"):
        assert intake([{"applied": good, "age": 30}], columns, policy)[0][0]["applied"] == good
    with pytest.raises(BadInput, match=r"record 0: field 'applied' must be an ISO 8601 date or time"):
        intake([{"applied": value, "age": 30}], columns, policy)
    intake([{"applied": value, "age": 30}], columns, Policy())  # an ordinary text field takes anything
