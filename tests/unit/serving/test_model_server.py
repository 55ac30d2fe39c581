"""The model server's handlers, each called by name on a `ModelServer` built from its real parts:
two small trained models, the micro-batcher, the prediction and feedback logs on disk, the
Prometheus instruments. No HTTP here (tests/integration/test_serving.py has it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from driftline.adapters.predlog import PartitionedLog
from driftline.adapters.predlog_reader import read_log
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.serving_client import client_records
from driftline.config import ServeSettings
from driftline.core import demo_data, frames, training
from driftline.core.features import datetime_inputs
from driftline.serving.batching import MicroBatcher, PredictFailed
from driftline.serving.ids import RequestIds
from driftline.serving.loader import Loaded, ModelSet, Rollout, Watcher
from driftline.serving.metrics import ServerMetrics
from driftline.serving.model_server import ModelServer
from driftline.serving.rows import log_rows, predict_batch

TOKEN = "a-token-for-the-tests"


def _loaded(version: str, model, p, example: pd.DataFrame) -> Loaded:
    columns = {f.name: "double" if f.type == "numeric" else "string" for f in p.data.features}
    return Loaded(version, model, columns, example, True, training.known_categories(model), datetime_inputs(model))


def _refuse(frame):
    raise RuntimeError("this model cannot predict")


@pytest.fixture(scope="module")
def served(params) -> dict:
    """Versions 1 and 2 (seeds 0 and 7) and 3, which loads but cannot predict anything."""
    parts = training.split(demo_data.generate(1500, 11), params)
    example = frames.features(parts.holdout.head(5), params.data)
    seven = params.model_copy(update={"training": params.training.model_copy(update={"seed": 7})})
    broken = Pipeline([("boom", FunctionTransformer(_refuse).fit(example)),
                       ("model", DummyClassifier().fit(example, [0, 1, 0, 1, 0]))])
    return {"1": _loaded("1", training.train(parts.train, params), params, example),
            "2": _loaded("2", training.train(parts.train, seven), params, example),
            "3": _loaded("3", broken, params, example),
            "records": client_records(frames.features(parts.holdout.head(20), params.data))}


class Harness:
    """A ModelServer over real parts; `run` drives a scenario with the batcher started and the logs
    written, and `logged` reads back what the logs hold."""

    def __init__(self, root: Path, models: dict[str, Loaded], rollout: Rollout, params, **settings):
        settings.setdefault("anonymous_labels", "feedback_token" not in settings)  # who labels: its own tests
        self.cfg = ServeSettings(log_dir=root, **settings)
        self.watcher = Watcher(MlflowStore(f"sqlite:///{root}/unused.db", str(root), "unit", "loan-default"))
        self.watcher.current = ModelSet(rollout, models)
        self.batcher = MicroBatcher(predict_batch, self.cfg.max_batch, self.cfg.max_wait_ms)
        self.logs = {name: PartitionedLog(root / name, flush_seconds=0.1) for name in ("predictions", "feedback")}
        self.metrics = ServerMetrics(self.logs, self.watcher)
        self.server = ModelServer(self.watcher, self.batcher, self.logs["predictions"], self.logs["feedback"],
                                  self.metrics, self.cfg, RequestIds(b"k" * 32, 3600), params.data.features)
        self.root = root

    def run(self, scenario):
        async def wrapped():
            self.batcher.start()
            try:
                return await scenario(self.server)
            finally:
                await self.batcher.stop()

        for plog in self.logs.values():
            plog.start()
        try:
            return asyncio.run(wrapped())
        finally:
            for plog in self.logs.values():
                plog.stop()

    def logged(self, name: str = "predictions") -> pd.DataFrame:
        return read_log(self.root / name)

    def count(self, variant: str, version: str, status: str) -> float:
        return self.metrics.registry.get_sample_value(
            "driftline_requests_total", {"variant": variant, "version": version, "status": status}) or 0.0


def _body(records) -> bytes:
    return json.dumps(records).encode()


def test_predict_answers_from_the_champion_counts_it_and_logs_each_record(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params)
    records = served["records"][:3]
    status, body = h.run(lambda s: s.predict({}, _body(records)))
    assert status == 200 and body["model_version"] == "1" and body["variant"] == "champion"
    assert len(body["predictions"]) == len(body["probabilities"]) == 3
    assert h.count("champion", "1", "ok") == 1
    rows = h.logged().sort_values("record_index")
    assert list(rows["request_id"].unique()) == [body["request_id"]] and list(rows["record_index"]) == [0, 1, 2]
    assert list(rows["status"].unique()) == ["ok"] and list(rows["prediction"]) == body["predictions"]
    assert rows["annual_income"].tolist() == [r["annual_income"] for r in records]


def test_predict_refuses_a_caller_without_the_token_and_takes_a_trusted_callers_id(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params, token=TOKEN)
    record = _body(served["records"][0])
    trusted = {b"authorization": f"Bearer {TOKEN}".encode(), b"x-request-id": b"order-17"}

    async def scenario(s):
        return await s.predict({}, record), await s.predict(trusted, record)

    (refused, why), (status, body) = h.run(scenario)
    assert refused == 401 and "bearer token" in why["detail"]
    assert status == 200 and body["client_request_id"] == "order-17" and body["request_id"] != "order-17"
    assert h.logged()["client_request_id"].tolist() == ["order-17"]


def test_predict_sends_the_canary_share_to_the_challenger(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"], "2": served["2"]}, Rollout("1", "2", "canary", 1.0), params)
    status, body = h.run(lambda s: s.predict({}, _body(served["records"][0])))
    assert status == 200 and (body["variant"], body["model_version"]) == ("challenger", "2")
    assert h.count("challenger", "2", "ok") == 1 and h.count("champion", "1", "ok") == 0


def test_predict_names_a_bad_record_before_any_model_runs(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params)
    bad = {**served["records"][0], "variant": "champion"}
    status, body = h.run(lambda s: s.predict({}, _body(bad)))
    assert status == 422 and "unknown field 'variant'" in body["detail"]
    assert h.count("champion", "1", "ok") == 0 and h.logged().empty


def test_answer_logs_a_shadow_answer_under_its_own_variant(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"], "2": served["2"]}, Rollout("1", "2", "shadow", 0.0), params)
    records = served["records"][:2]
    result = h.run(lambda s: s.answer(served["2"], "shadow", records, ["", ""], "rid", None))
    assert result["variant"] == "shadow" and result["model_version"] == "2"
    rows = h.logged()
    assert set(rows["variant"]) == {"shadow"} and set(rows["model_version"]) == {"2"} and len(rows) == 2
    assert h.count("shadow", "2", "ok") == 1


def test_answer_logs_an_error_row_per_record_when_the_model_fails(tmp_path, served, params):
    h = Harness(tmp_path, {"3": served["3"]}, Rollout("3", None), params)

    async def scenario(s):
        with pytest.raises(PredictFailed):
            await s.answer(served["3"], "champion", served["records"][:2], ["", "age"], "rid", "client-9")

    h.run(scenario)
    rows = h.logged().sort_values("record_index")
    assert rows["status"].tolist() == ["error", "error"] and rows["out_of_range"].tolist() == ["", "age"]
    assert rows["client_request_id"].tolist() == ["client-9", "client-9"]
    assert h.count("champion", "3", "error") == 1


@pytest.fixture(scope="module")
def forests(params) -> dict:
    """Two random forests (seeds 0 and 7): sklearn's forests cast to float32, so a value of 1e39
    breaks both (the issue's example), as it breaks the demo's kinds on one input or another."""
    from driftline.config import load_params
    from tests.unit.conftest import PARAMS_FILE

    parts = training.split(demo_data.generate(1500, 11), params)
    example = frames.features(parts.holdout.head(5), params.data)
    forest = {}
    for version, seed in (("5", 0), ("6", 7)):
        p = load_params(PARAMS_FILE, ["training.estimator={kind: random_forest, n_estimators: 20}",
                                      f"training.seed={seed}"])
        forest[version] = _loaded(version, training.train(parts.train, p), p, example)
    return forest


def test_a_challenger_failure_counts_against_it_only_where_the_champion_answers_the_same_rows(
        tmp_path, served, forests, params):
    """Canary at 100%: a challenger that cannot predict (version 3) fails where the champion answers,
    logged "error" (the analysis counts it); a request whose own values break both forests (1e39)
    is answered 422 by the champion, and the challenger's rows are "input_error" (counted by nobody)."""
    records = served["records"][:3]
    broken = Harness(tmp_path / "broken", {"1": served["1"], "3": served["3"]}, Rollout("1", "3", "canary", 1.0),
                     params)
    status, body = broken.run(lambda s: s.predict({}, _body(records)))
    assert status == 200 and (body["variant"], body["model_version"]) == ("champion", "1")
    rows = broken.logged()
    assert sorted(zip(rows["variant"], rows["status"], strict=True)) == [("challenger", "error")] * 3 + [
        ("champion", "ok")] * 3
    assert broken.count("challenger", "3", "error") == 1 and broken.count("challenger", "3", "input_error") == 0

    both = Harness(tmp_path / "both", {"5": forests["5"], "6": forests["6"]}, Rollout("5", "6", "canary", 1.0), params)
    huge = [records[0], {**records[1], "annual_income": 1e39}, records[2]]

    async def scenario(s):  # and then good rows: the challenger answers them
        return await s.predict({}, _body(huge)), await s.predict({}, _body(records))

    (status, body), (good, answered) = both.run(scenario)
    assert (status, body["detail"]) == (422, "the model could not score this input")
    assert good == 200 and answered["variant"] == "challenger"
    rows = both.logged()
    assert sorted(zip(rows["variant"], rows["status"], strict=True)) == [("challenger", "input_error")] * 3 + [
        ("challenger", "ok")] * 3 + [("champion", "error")] * 3
    assert both.count("challenger", "6", "input_error") == 1 and both.count("challenger", "6", "error") == 0


def test_each_log_row_names_its_client_by_a_keyed_hash_of_its_address_or_token_never_the_address(
        tmp_path, served, params):
    record = _body(served["records"][0])
    ids = RequestIds(b"k" * 32, 3600)  # the harness's key
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params)

    async def scenario(s):
        for peer in (b"10.0.0.7", b"10.0.0.7", b"192.168.1.9"):
            await s.predict({b":peer": peer}, record)

    h.run(scenario)
    keys = h.logged()["client_key"]
    assert sorted(keys) == sorted([ids.client_key(b"10.0.0.7")] * 2 + [ids.client_key(b"192.168.1.9")])
    assert keys.nunique() == 2 and not h.logged().astype(str).apply(lambda c: c.str.contains("10.0.0.7")).any().any()
    assert RequestIds(b"x" * 32, 3600).client_key(b"10.0.0.7") != ids.client_key(b"10.0.0.7")  # keyed
    trusted = Harness(tmp_path / "token", {"1": served["1"]}, Rollout("1", None), params, token=TOKEN)
    trusted.run(lambda s: s.predict({b"authorization": f"Bearer {TOKEN}".encode(), b":peer": b"10.0.0.7"}, record))
    assert trusted.logged()["client_key"].tolist() == [ids.client_key(b"token")]  # one client: the token's holders


def test_shadow_never_raises_to_the_caller_and_its_failure_is_counted_and_logged(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"], "3": served["3"]}, Rollout("1", "3", "shadow", 0.0), params)
    assert h.run(lambda s: s.shadow(served["3"], served["records"][:1], [""], "rid", None)) is None
    assert h.count("shadow", "3", "error") == 1
    rows = h.logged()
    assert (rows["variant"].tolist(), rows["status"].tolist()) == (["shadow"], ["error"])


def test_failure_says_422_for_the_requests_own_rows_and_500_for_a_broken_model(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"], "3": served["3"]}, Rollout("1", None), params)
    cause = RuntimeError("internal detail")

    async def scenario(s):
        return (await s.failure(PredictFailed(cause, alone=True), served["1"], "r1", False),
                # alone in its batch, and the model still answers its own example: the rows' fault
                await s.failure(PredictFailed(cause, alone=False), served["1"], "r2", False),
                # the model cannot answer its own example either: the model's fault
                await s.failure(PredictFailed(cause, alone=False), served["3"], "r3", False),
                await s.failure(PredictFailed(cause, alone=False), served["3"], "r4", True))

    alone, own_rows, broken, told = h.run(scenario)
    assert alone == (422, {"detail": "the model could not score this input", "request_id": "r1"})
    assert own_rows[0] == 422
    assert broken == (500, {"detail": "prediction failed; the server log has the reason", "request_id": "r3"})
    assert told[0] == 500 and "internal detail" in told[1]["detail"]


def test_feedback_takes_a_label_for_an_answered_record_only(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params)

    async def scenario(s):
        _, answered = await s.predict({}, _body(served["records"][0]))
        good = {"request_id": answered["request_id"], "label": 1}
        forged = {"request_id": "0" * 56, "label": 1}
        return (answered["request_id"], await s.feedback({}, _body(good)), await s.feedback({}, _body(forged)),
                await s.feedback({}, _body({**good, "label": "maybe"})))

    request_id, accepted, forged, wrong = h.run(scenario)
    assert accepted == (200, {"accepted": 1})
    assert forged[0] == 404 and "not issued by this server" in forged[1]["detail"]
    assert wrong[0] == 422 and "not one of the model's classes" in wrong[1]["detail"]
    labels = h.logged("feedback")
    assert labels["request_id"].tolist() == [request_id] and labels["label"].tolist() == ["1"]


def test_labels_come_only_with_the_label_token_and_the_rollout_only_to_token_holders(tmp_path, served, params):
    """Whoever may predict may not judge: the predict and metrics tokens are refused on /feedback,
    and a server with no label token takes no labels unless anonymous labels are asked for. A
    caller presenting no token is not told which arm answered."""
    tokens = {"token": "predict-1", "feedback_token": "label-22", "metrics_token": "scrape-333"}
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params, **tokens)
    predictor, labeller, scraper = ({b"authorization": f"Bearer {t}".encode()} for t in tokens.values())

    async def scenario(s):
        _, answered = await s.predict(predictor, _body(served["records"][0]))
        label = _body({"request_id": answered["request_id"], "label": 1})
        return answered, [await s.feedback(h, label) for h in (predictor, scraper, {}, labeller)]

    answered, (by_predictor, by_scraper, anonymous, by_labeller) = h.run(scenario)
    assert answered["variant"] == "champion"  # the predict token is one of the server's
    assert by_predictor[0] == by_scraper[0] == 403 and "may not post labels" in by_predictor[1]["detail"]
    assert anonymous[0] == 401 and by_labeller == (200, {"accepted": 1})
    assert set(h.server.models({})) == {"model_name", "role", "ready"}
    assert h.server.models(scraper)["champion"] == "1"

    open_predict = Harness(tmp_path / "open", {"1": served["1"]}, Rollout("1", None), params,
                           feedback_token="label-22", anonymous_labels=False)
    answered, refused = open_predict.run(lambda s: _predict_and_label(s, served, {}))
    assert "variant" not in answered and "model_version" not in answered and answered["predictions"]
    assert refused[0] == 401

    no_labels = Harness(tmp_path / "none", {"1": served["1"]}, Rollout("1", None), params, anonymous_labels=False)
    answered, refused = no_labels.run(lambda s: _predict_and_label(s, served, {}))
    assert answered["variant"] == "champion"  # a server with no token at all hides nothing
    assert refused[0] == 403 and "takes no labels" in refused[1]["detail"]


async def _predict_and_label(s, served, headers):
    _, answered = await s.predict(headers, _body(served["records"][0]))
    return answered, await s.feedback(headers, _body({"request_id": answered["request_id"], "label": 1}))


def test_a_staging_server_takes_no_feedback(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"]}, Rollout("1", None), params, role="staging")
    status, body = h.run(lambda s: s.feedback({}, b"{}"))
    assert status == 404 and "staging server takes no feedback" in body["detail"]


def test_policy_checks_the_champion_against_every_served_models_inputs_and_is_made_once_per_model_set(
        tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"], "2": served["2"]}, Rollout("1", "2", "canary", 0.5), params,
                unknown_category="reject")
    current = h.watcher.current
    champion, challenger = h.server.policy(current, served["1"]), h.server.policy(current, served["2"])
    assert champion.known == frozenset(served["1"].columns) and challenger.known is None
    assert champion.categories == served["1"].categories and not champion.drop_unknown
    assert h.server.policy(current, served["1"]) is champion  # the same model set: not made again
    h.watcher.current = ModelSet(current.rollout, dict(current.models))
    assert h.server.policy(h.watcher.current, served["1"]) is not champion


def test_ready_and_models_say_what_is_served(tmp_path, served, params):
    h = Harness(tmp_path, {"1": served["1"], "2": served["2"]}, Rollout("1", "2", "canary", 0.25, "0"), params)
    assert h.server.ready() == (200, {"status": "ready", "champion": "1"})
    shown = h.server.models()
    assert (shown["model_name"], shown["champion"], shown["challenger"], shown["challenger_weight"]) == (
        "loan-default", "1", "2", 0.25)
    assert shown["loaded"] == ["1", "2"]
    h.watcher.current = ModelSet(Rollout(None, None), {}, {"4": "ValueError: no"})
    assert h.server.ready() == (503, {"status": "not ready", "errors": {"4": "ValueError: no"}})  # registry read


def test_a_log_row_is_the_records_columns_then_the_servers_fields_which_always_win():
    forged = {"age": 30.0, "variant": "champion", "timestamp": "2000-01-01", "status": "ok", "record_index": 9}
    ok = log_rows([forged, {"age": 41.0}], ["", "age"], request_id="r", variant="challenger", version="2",
                  status="ok", latency_ms=3.5, client_id="c", predictions=[1, 0], scores=[0.75, 0.25])
    assert ok[0]["variant"] == "challenger" and ok[0]["status"] == "ok" and ok[0]["record_index"] == 0
    assert ok[0]["timestamp"] != "2000-01-01" and ok[0]["age"] == 30.0
    assert (ok[1]["out_of_range"], ok[1]["prediction"], ok[1]["score"], ok[1]["client_request_id"]) == ("age", 0, 0.25,
                                                                                                         "c")
    error = log_rows([forged], [""], request_id="r", variant="champion", version="1", status="error", latency_ms=1.0)
    assert error[0]["status"] == "error" and "prediction" not in error[0] and "score" not in error[0]
    assert "client_request_id" not in error[0] and error[0]["model_version"] == "1"
    assert list(ok[0])[:2] == ["age", "variant"] and set(ok[0]) == set(error[0]) | {"client_request_id",
                                                                                    "prediction", "score"}


def test_a_multiclass_answer_logs_every_class_probability_and_a_client_cannot_forge_one():
    import numpy as np

    forged = {"age": 30.0, "proba_1": 0.99}
    rows = log_rows([forged], [""], request_id="r", variant="champion", version="1", status="ok", latency_ms=1.0,
                    predictions=["b"], scores=np.array([0.5]), probabilities=np.array([[0.2, 0.5, 0.3]]))
    assert [rows[0][f"proba_{j}"] for j in range(3)] == [0.2, 0.5, 0.3]
    two = log_rows([{"age": 30.0}], [""], request_id="r", variant="champion", version="1", status="ok",
                   latency_ms=1.0, predictions=[1], scores=np.array([0.5]))
    assert not any(k.startswith("proba_") for k in two[0])  # two classes: the score says it all
