"""The request checks of the model server, without a server."""

from __future__ import annotations

import pytest

from driftline.serving.app import BadInput, canary_share, check_records, parse_records

COLUMNS = {"age": "double", "region": "string"}
KNOWN = {"region": {"north", "south"}}


def test_records_come_in_every_documented_shape():
    one = {"age": 30.0, "region": "north"}
    assert parse_records(one) == [one]
    assert parse_records([one, one]) == [one, one]
    assert parse_records({"dataframe_records": [one]}) == [one]
    assert parse_records({"dataframe_split": {"columns": ["age", "region"], "data": [[30.0, "north"]]}}) == [one]


@pytest.mark.parametrize("body", [[], "x", 3, [1], {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}])
def test_other_shapes_are_refused(body):
    with pytest.raises(BadInput):
        parse_records(body)


@pytest.mark.parametrize(("record", "needle"), [
    ({"region": "north"}, "missing field 'age'"),
    ({"age": "30", "region": "north"}, "'age' must be a number"),
    ({"age": True, "region": "north"}, "'age' must be a number"),
    ({"age": float("inf"), "region": "north"}, "'age' must be finite"),
    ({"age": 30, "region": 4}, "'region' must be a string"),
])
def test_signature_violations_name_the_field(record, needle):
    with pytest.raises(BadInput, match=needle):
        check_records([record], COLUMNS)


def test_unknown_categories_pass_unless_the_policy_rejects_them():
    record = {"age": 30, "region": "atlantis"}
    check_records([record], COLUMNS)  # allowed: the model treats it as missing
    with pytest.raises(BadInput, match=r"record 0: field 'region' has unknown category 'atlantis' \(known: 'north'"):
        check_records([record], COLUMNS, KNOWN)
    check_records([{"age": None, "region": None}], COLUMNS, KNOWN)  # missing is not unknown


def test_the_canary_share_is_stable_and_uniform():
    assert canary_share("abc") == canary_share("abc")
    shares = [canary_share(f"req-{i}") for i in range(20_000)]
    assert all(0 <= s < 1 for s in shares)
    assert abs(sum(s < 0.1 for s in shares) / len(shares) - 0.1) < 0.01
