"""MLflow's scoring protocol: its bodies read as driftline's records, its answer and error shapes,
and `/invocations` through the same ModelServer.predict as `/predict` (the app in-process)."""

from __future__ import annotations

import base64
import json

import pytest

from driftline.serving.intake import BadInput, TooMany
from driftline.serving.loader import ModelSet, Rollout
from driftline.serving.protocols import encoded, token_from_basic
from driftline.serving.protocols.mlflow_scoring import accepts, answer, csv_records, json_records
from tests.unit.serving.protocols.conftest import TOKEN

ONE = {"age": 30.0, "region": "north"}
TWO = {"age": 41.0, "region": None}
COLUMNS = {"age": "double", "region": "string"}


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"index": [0, 1], "columns": ["age", "region"], "data": [[30.0, "north"], [41.0, None]]}},
    {"dataframe_records": [ONE, TWO]},
    {"instances": [ONE, TWO]},
    {"inputs": [ONE, TWO]},
    {"instances": {"age": [30.0, 41.0], "region": ["north", None]}},
    {"inputs": {"age": [30.0, 41.0], "region": ["north", None]}},
])
def test_every_format_mlflow_models_serve_takes_reads_as_the_same_records(body):
    assert json_records(body, 100) == ([ONE, TWO], "predict")


def test_a_single_value_per_column_is_one_record_and_params_choose_predict_proba():
    assert json_records({"inputs": ONE}, 100) == ([ONE], "predict")
    body = {"dataframe_records": [ONE], "params": {"predict_fn": "predict_proba"}}
    assert json_records(body, 100) == ([ONE], "predict_proba")
    assert json_records({"dataframe_records": [ONE], "params": {}}, 100)[1] == "predict"


@pytest.mark.parametrize(("body", "needle"), [
    ([ONE], "got a list"),
    ({"dataframe_records": [ONE], "instances": [ONE]}, "exactly one of"),
    ({"dataframe_records": [ONE], "variant": "challenger"}, "found keys 'dataframe_records', 'variant'"),
    ({}, "found keys none"),
    ({"dataframe_records": ONE}, "dataframe_records must be a list of records"),
    ({"instances": []}, "instances must be a non-empty list of records"),
    ({"inputs": [[30.0, "north"]]}, "inputs must be a non-empty list of records"),
    ({"inputs": {}}, "inputs holds no columns"),
    ({"inputs": {"age": [30.0, 41.0], "region": "north"}}, "every column must be a list of values"),
    ({"inputs": {"age": [30.0, 41.0], "region": ["north"]}}, "the same number of values"),
    ({"dataframe_split": {"columns": ["age"]}}, "dataframe_split needs 'columns'"),
    ({"dataframe_records": [ONE], "params": ["predict_proba"]}, "'params' must be a JSON object"),
    ({"dataframe_records": [ONE], "params": {"temperature": 0.1}}, "unknown param 'temperature'"),
    ({"dataframe_records": [ONE], "params": {"predict_fn": "score"}}, "must be 'predict' or 'predict_proba'"),
])
def test_a_body_mlflow_would_not_read_or_driftline_refuses_names_the_problem(body, needle):
    with pytest.raises(BadInput) as err:
        json_records(body, 100)
    assert needle in str(err.value) and not isinstance(err.value, TooMany)


def test_more_records_than_the_limit_is_too_many_in_every_format():
    for body in ({"dataframe_records": [ONE] * 4}, {"inputs": {"age": [1.0] * 4, "region": ["a"] * 4}},
                 {"dataframe_split": {"columns": ["age"], "data": [[1.0]] * 4}}):
        with pytest.raises(TooMany):
            json_records(body, 3)


def test_csv_is_read_as_pandas_reads_it_for_mlflow():
    body = b'age,region,note\n30,north,x\n,NA,\n"4.1e1", south ,1e3\n\n'
    assert csv_records(body, COLUMNS, 100) == [
        {"age": 30.0, "region": "north", "note": "x"},
        {"age": None, "region": None, "note": None},  # pandas' missing markers, in every column
        {"age": 41.0, "region": " south ", "note": "1e3"},  # a column the model lacks stays text
    ]


@pytest.mark.parametrize(("body", "needle"), [
    (b",age\n0,30\n", "CSV column 1 has no name"),
    (b"age,age\n1,2\n", "naming each column once"),
    (b"", "needs a header line"),
    (b"age,region\n", "a header line and no rows"),
    (b"age,region\n30\n", "CSV record 0: 1 fields, the header names 2"),
    (b"age,region\nthirty,north\n", "field 'age' must be a number, got 'thirty'"),
    (b"age,region\n1_000,north\n", "must be a number"),
    (b"age,region\n30,\xff\n", "not valid UTF-8"),
    (b'age,region\n30,"north\n', "does not parse"),
])
def test_a_malformed_csv_names_the_problem(body, needle):
    with pytest.raises(BadInput) as err:
        csv_records(body, COLUMNS, 100)
    assert needle in str(err.value)


def test_a_csv_past_the_record_limit_is_too_many():
    with pytest.raises(TooMany):
        csv_records(b"age\n" + b"1\n" * 4, COLUMNS, 3)
    assert len(csv_records(b"age\n" + b"1\n" * 3 + b"\n\n", COLUMNS, 3)) == 3


@pytest.mark.parametrize(("content_type", "refused"), [
    (b"application/json", None), (b"text/csv", None), (b"application/json; charset=UTF-8", None),
    (b"text/csv; charset=latin-1", "only supports UTF-8"), (b"application/json; format=pandas-split", "format"),
    (b"application/vnd.apache.parquet", "Parquet is not accepted"), (b"text/plain", "'text/plain'"),
    (b"application/x-www-form-urlencoded", "application/json or text/csv"), (None, "application/json or text/csv"),
])
def test_content_types_are_mlflows_json_and_csv_in_utf8(content_type, refused):
    why = accepts({b"content-type": content_type} if content_type else {})
    assert why is None if refused is None else refused in why


def test_a_compressed_body_and_a_basic_credential():
    assert "gzip" in encoded({b"content-encoding": b"gzip"}) and encoded({b"content-encoding": b"identity"}) is None
    basic = {b"authorization": b"Basic " + base64.b64encode(f"anyone:{TOKEN}".encode())}
    assert token_from_basic(basic) == {b"authorization": f"Bearer {TOKEN}".encode()}
    for header in (b"Bearer x", b"Basic !!!", b"Basic " + base64.b64encode(b"no-colon")):
        assert token_from_basic({b"authorization": header}) == {b"authorization": header}


def test_answers_and_errors_keep_mlflows_shape_and_name_the_servers_request_id():
    served = {"request_id": "r1", "model_version": "2", "variant": "challenger", "predictions": [1, 0],
              "probabilities": [{"0": 0.25, "1": 0.75}, {"0": 0.5, "1": 0.5}]}
    assert answer(200, served) == {"predictions": [1, 0], "request_id": "r1", "model_version": "2",
                                   "variant": "challenger"}
    assert answer(200, served, "predict_proba")["predictions"] == [[0.25, 0.75], [0.5, 0.5]]
    assert answer(422, {"detail": "record 0: missing field 'age'"}) == {
        "error_code": "BAD_REQUEST", "message": "record 0: missing field 'age'"}
    assert answer(401, {"detail": "no"})["error_code"] == "UNAUTHENTICATED"
    assert answer(503, {"detail": "later"})["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_invocations_answers_what_predict_answers_and_logs_it_the_same_way(make_app, models):
    app = make_app()
    records = models["records"][:4]
    columns = list(records[0])

    async def scenario(client):
        split = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}}
        csv = models["frame"].head(4).to_csv(index=False)
        return (await client.post("/predict", json=records),
                await client.post("/invocations", json=split),
                await client.post("/invocations", json={**split, "params": {"predict_fn": "predict_proba"}}),
                await client.post("/invocations", content=csv, headers={"content-type": "text/csv"}))

    native, labels, proba, csv = (r.json() for r in app.run(scenario))
    assert labels["predictions"] == csv["predictions"] == native["predictions"]
    assert proba["predictions"] == [list(p.values()) for p in native["probabilities"]]
    assert set(labels) == {"predictions", "request_id", "model_version", "variant"}
    # One hot path: each answer is counted and logged as /predict's is, under its own request id.
    assert app.count("champion", "1") == 4
    log = app.logged()
    ids = {a["request_id"] for a in (native, labels, proba, csv)}
    assert set(log["request_id"]) == ids and len(log) == 16
    assert set(log["prediction"]) <= {0, 1} and (log["variant"] == "champion").all()


def test_invocations_errors_use_mlflows_shape_with_predicts_statuses(make_app, models):
    app = make_app(max_records=3)
    record = models["records"][0]

    async def scenario(client):
        post = client.post
        return {"missing": await post("/invocations", json={"dataframe_records": [{"age": 30}]}),
                "forged": await post("/invocations", json={"dataframe_records": [{**record, "variant": "x"}]}),
                "nan": await post("/invocations", content=json.dumps({"dataframe_records": [{**record, "age": "X"}]})
                                  .replace('"X"', "NaN"), headers={"content-type": "application/json"}),
                "infinite": await post("/invocations", content=json.dumps({"inputs": {**record, "age": "X"}})
                                       .replace('"X"', "Infinity"), headers={"content-type": "application/json"}),
                "many": await post("/invocations", json={"dataframe_records": [record] * 4}),
                "deep": await post("/invocations", content="[" * 100_000, headers={"content-type": "application/json"}),
                "plain": await post("/invocations", content=b"{}", headers={"content-type": "text/plain"}),
                "get": await client.get("/invocations")}

    got = app.run(scenario)
    assert got["nan"].status_code == 200  # NaN is how pandas writes a missing number
    expected = {"missing": (422, "missing field 'annual_income'"), "forged": (422, "unknown field 'variant'"),
                "infinite": (422, "'age' must be finite"), "many": (413, "at most 3"),
                "deep": (422, "nested too deeply"), "plain": (415, "'text/plain'"), "get": (405, "use POST")}
    for name, (status, needle) in expected.items():
        response = got[name]
        assert response.status_code == status, (name, response.text)
        assert response.json()["error_code"] == "BAD_REQUEST" and needle in response.json()["message"], name
    assert app.refused("/invocations", 422) == 4 and app.refused("/invocations", 415) == 1


def test_invocations_takes_the_token_as_a_bearer_or_as_basics_password(make_app, models):
    app = make_app(token=TOKEN)
    body = {"dataframe_records": models["records"][:1]}
    netrc_style = "Basic " + base64.b64encode(f"driftline:{TOKEN}".encode()).decode()

    async def scenario(client):
        return [(await client.post("/invocations", json=body, headers=h)) for h in (
            {}, {"authorization": "Basic " + base64.b64encode(b"driftline:wrong").decode()},
            {"authorization": f"Bearer {TOKEN}"}, {"authorization": netrc_style})]

    anonymous, wrong, bearer, basic = app.run(scenario)
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json() == {"error_code": "UNAUTHENTICATED", "message": "missing or wrong bearer token"}
    assert bearer.status_code == basic.status_code == 200


def test_a_canary_splits_invocations_and_their_request_ids_take_feedback(make_app, models):
    app = make_app(Rollout("1", "2", "canary", 1.0))
    body = {"dataframe_records": models["records"][:2]}

    async def scenario(client):
        answered = await client.post("/invocations", json=body)
        rid = answered.headers["x-driftline-request-id"]
        labels = [{"request_id": rid, "index": i, "label": 1} for i in range(2)]
        return answered, await client.post("/feedback", json=labels)

    answered, feedback = app.run(scenario)
    assert (answered.json()["variant"], answered.json()["model_version"]) == ("challenger", "2")
    assert answered.json()["request_id"] == answered.headers["x-driftline-request-id"]
    assert feedback.json() == {"accepted": 2}
    assert app.count("challenger", "2") == 1 and app.count("champion", "1") == 0
    assert set(app.logged()["variant"]) == {"challenger"}


def test_ping_answers_as_mlflows_and_health_stays_driftlines(make_app):
    app = make_app()

    async def scenario(client):
        before = await client.get("/ping")
        app.app.state.watcher.current = ModelSet(Rollout(None, None))  # nothing loaded
        return before, await client.get("/ping"), await client.get("/health"), await client.get("/version")

    loaded, empty, health, version = app.run(scenario)
    assert (loaded.status_code, loaded.text) == (200, "\n") and empty.status_code == 404
    assert health.json() == {"status": "alive"} and version.text.startswith("3.")
