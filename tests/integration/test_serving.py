"""The model server under uvicorn on a loopback port, real HTTP, models from the MLflow registry."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.adapters.predlog_reader import read_log
from driftline.adapters.registry.lease import ROLLOUT, Lease
from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from driftline.adapters.serving_client import client_records
from driftline.config import ServeSettings, load_params
from driftline.core import demo_data, frames
from driftline.serving.ids import RequestIds
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from driftline.serving.server import build_app, uvicorn_config
from tests.integration.conftest import free_port, make_project
from tests.waiting import wait_until


class Server:
    def __init__(self, project, log_dir: Path, **overrides):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A test about something else than who may label runs a local experiment's server, which
        # takes anyone's labels; one given a label token takes them only with it.
        overrides.setdefault("anonymous_labels", "feedback_token" not in overrides)
        cfg = ServeSettings(port=self.port, poll_seconds=0.5, log_dir=log_dir, **overrides)
        p = load_params(project.root / "params.yaml")
        self.app = build_app(project.settings, p, cfg)
        self.server = uvicorn.Server(uvicorn_config(self.app, cfg))  # as `driftline serve` runs it
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_until(self._ready, 60), "server never became ready"

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def log_drifted_traffic(project, log_dir, rows: int) -> None:
    """Serve the project's champion, send it covariate-shifted traffic until all but 100 of `rows`
    are in, and stop the server (which flushes its prediction log into `log_dir`)."""
    from driftline.app.traffic import Traffic

    server = Server(project, log_dir)
    traffic = Traffic(server.url, load_params(project.root / "params.yaml"), scenario="covariate_shift",
                      threads=4, rows=rows)
    wait_until(lambda: traffic.sent >= rows - 100, 180, interval=0.5)
    traffic.stop()
    server.stop()
    assert traffic.failures == []


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    project = make_project(root / "proj")
    assert project.train()["version"] == "1"
    assert project.train("training.seed=7")["version"] == "2"  # @challenger, for the canary test
    server = Server(project, root / "logs")
    yield project, server, root / "logs"
    server.stop()


def version_one_alone(module_server, headers: dict | None = None):
    """Version 1 serving alone, whatever the test before moved (`headers`: a closed server's
    metrics token, which /models asks for)."""
    project, server, _ = module_server
    store = project.store()
    store.set_model_tags({STRATEGY_TAG: "none", WEIGHT_TAG: "0"})
    store.move_alias(CHAMPION, "1", "test setup")
    store.move_alias(CHALLENGER, None, "test setup")
    assert wait_until(lambda: (m := httpx.get(f"{server.url}/models", headers=headers).json())["champion"] == "1"
                      and m["challenger"] is None, 30)
    return module_server


@pytest.fixture
def served(module_server):
    return version_one_alone(module_server)


def _records(n: int, seed: int = 3) -> list[dict]:
    p = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    return client_records(frames.features(demo_data.generate(n, seed), p.data))


def test_health_ready_models(served):
    _, server, _ = served
    assert httpx.get(f"{server.url}/health").json() == {"status": "alive"}
    assert httpx.get(f"{server.url}/ready").json()["champion"] == "1"
    models = httpx.get(f"{server.url}/models").json()
    assert models["champion"] == "1" and models["loaded"] == ["1"] and models["challenger"] is None


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_metrics_count_requests_by_variant_version_and_status(served):
    _, server, _ = served
    ok = 'driftline_requests_total{status="ok",variant="champion",version="1"}'
    before = _metric(httpx.get(f"{server.url}/metrics").text, ok)
    for record in _records(3):
        assert httpx.post(f"{server.url}/predict", json=record).status_code == 200
    text = httpx.get(f"{server.url}/metrics").text
    assert _metric(text, ok) == before + 3
    assert 'driftline_request_seconds_bucket{le="0.001",variant="champion",version="1"}' in text
    assert "driftline_prediction_score_count" in text and "driftline_log_rows_total" in text


def test_predict_answers_one_record_many_records_and_dataframe_split(served):
    _, server, _ = served
    rows = _records(3)
    one = httpx.post(f"{server.url}/predict", json=rows[0], headers={"x-request-id": "r-1"}).json()
    # The id is the server's: an anonymous caller's X-Request-ID is ignored.
    assert len(one["request_id"]) == 56 and one["model_version"] == "1" and one["variant"] == "champion"
    assert one["predictions"][0] in (0, 1)
    assert abs(sum(one["probabilities"][0].values()) - 1) < 1e-9
    many = httpx.post(f"{server.url}/predict", json=rows).json()
    assert len(many["predictions"]) == 3
    columns = list(rows[0])
    split = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}}
    assert httpx.post(f"{server.url}/predict", json=split).json()["predictions"] == many["predictions"]


@pytest.mark.parametrize(("body", "needle"), [
    ({"age": 30}, "missing field"),
    ("not json", "not valid JSON"),
    ([], "expected a JSON object"),
])
def test_bad_input_is_422_naming_the_problem(served, body, needle):
    _, server, _ = served
    content = body.encode() if isinstance(body, str) else None
    response = httpx.post(f"{server.url}/predict", json=None if content else body, content=content,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and needle in response.json()["detail"]


def test_wrong_type_names_the_field_and_big_bodies_are_413(served):
    _, server, _ = served
    record = {**_records(1)[0], "credit_score": "high"}
    response = httpx.post(f"{server.url}/predict", json=record)
    assert response.status_code == 422 and "'credit_score' must be a number" in response.json()["detail"]
    big = httpx.post(f"{server.url}/predict", json=_records(1)[0:1] * 5000)
    assert big.status_code == 413
    # Python's JSON reader accepts Infinity and NaN; the model must never see them.
    text = json.dumps({**_records(1)[0], "age": "INF"}).replace('"INF"', "Infinity")
    inf = httpx.post(f"{server.url}/predict", content=text, headers={"content-type": "application/json"})
    assert inf.status_code == 422 and "'age' must be finite" in inf.json()["detail"]


scalars = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers() | st.text()
json_values = st.recursive(scalars,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values, mutate=st.dictionaries(st.sampled_from(["age", "region", "credit_score", "term_months"]),
                                                json_values, max_size=3))
def test_fuzzed_bodies_never_get_a_500(served, body, mutate):
    _, server, _ = served
    for payload in (body, {**_records(1)[0], **mutate}):
        response = httpx.post(f"{server.url}/predict", content=json.dumps(payload),
                              headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code in (200, 413, 422), (payload, response.text)


def test_concurrent_requests_are_batched_and_logged_off_the_hot_path(served):
    _, server, logs = served
    before = httpx.get(f"{server.url}/models").json()
    rows = _records(64, seed=9)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: httpx.post(f"{server.url}/predict", json=rows[i], timeout=30), range(64)))
    assert all(a.status_code == 200 for a in answers)
    ids = [a.json()["request_id"] for a in answers]
    after = httpx.get(f"{server.url}/models").json()
    batches, batched = after["batches"] - before["batches"], after["batched_rows"] - before["batched_rows"]
    assert batched == 64 and batches < 64, f"{batches} predict calls for 64 requests"

    feedback = httpx.post(f"{server.url}/feedback", json=[{"request_id": i, "index": 0, "label": 1} for i in ids[:5]])
    assert feedback.json() == {"accepted": 5}
    assert wait_until(lambda: set(ids) <= set(read_log(logs / "predictions").get("request_id", [])), 15)
    log = read_log(logs / "predictions")
    assert {"timestamp", "variant", "model_version", "prediction", "score", "credit_score", "record_index",
            "out_of_range"} <= set(log.columns)
    assert any((logs / "predictions").glob("date=*/hour=*/part-*.parquet"))
    assert wait_until(lambda: len(read_log(logs / "feedback")) >= 5, 15)


def test_canary_split_shadow_and_a_swap_under_load(served):
    project, server, logs = served
    store = project.store()
    store.move_alias(CHALLENGER, "2", "test setup")
    rollout = Lease(store, ROLLOUT, "test_canary_split", 600)  # rollout tags count only under a live rollout lease
    assert rollout.acquire()
    store.client.set_registered_model_tag(store.model_name, STRATEGY_TAG, "canary")
    store.client.set_registered_model_tag(store.model_name, WEIGHT_TAG, "0.3")
    # The challenger loaded and its weight in force: the split below is measured at 0.3, not before.
    assert wait_until(lambda: (m := httpx.get(f"{server.url}/models").json())["challenger"] == "2"
                      and m["challenger_weight"] == 0.3, 30)

    rows = _records(1)
    variants = {}
    # One client (a connection pool): a client per request cost more CPU than the server's answers.
    client = httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=16))
    with client, ThreadPoolExecutor(16) as pool:
        answers = pool.map(lambda i: client.post("/predict", json=rows[0]).json(), range(800))
        for answer in answers:
            variants[answer["request_id"]] = answer["variant"]
    share = sum(v == "challenger" for v in variants.values()) / len(variants)
    assert abs(share - 0.3) < 0.05, share  # binomial sd at n=800 is 0.016
    # The arm is a function of the (server's) request id keyed by the server's key, so every
    # replica holding the key agrees on it, and a client, without it, cannot tell its arm.
    keyed = RequestIds((project.settings.state / "request-id.key").read_text().strip().encode(), 3600)
    assert all((v == "challenger") == (keyed.share(rid) < 0.3) for rid, v in variants.items())

    store.client.set_registered_model_tag(store.model_name, STRATEGY_TAG, "shadow")
    assert wait_until(lambda: httpx.get(f"{server.url}/models").json()["strategy"] == "shadow", 30)
    shadow_answers = [httpx.post(f"{server.url}/predict", json=rows[0]).json() for i in range(20)]
    assert {a["variant"] for a in shadow_answers} == {"champion"}
    mirrored = {a["request_id"] for a in shadow_answers}
    assert wait_until(lambda: (read_log(logs / "predictions").query("variant == 'shadow'")["request_id"]
                               .isin(mirrored).sum() == 20), 15)

    # Move @champion to version 2 while requests keep coming: none may fail.
    failures, done = [], threading.Event()

    def load() -> int:
        sent = 0
        with httpx.Client(base_url=server.url, timeout=30) as own:
            while not done.is_set():
                r = own.post("/predict", json=rows[0])
                sent += 1
                if r.status_code != 200:
                    failures.append(r.status_code)
        return sent

    with ThreadPoolExecutor(4) as pool:
        loads = [pool.submit(load) for _ in range(4)]
        time.sleep(1)
        store.client.set_registered_model_tag(store.model_name, STRATEGY_TAG, "none")
        store.client.set_registered_model_alias(store.model_name, CHAMPION, "2")
        store.client.delete_registered_model_alias(store.model_name, CHALLENGER)
        rollout.release()
        swapped = wait_until(lambda: httpx.post(f"{server.url}/predict", json=rows[0]).json()["model_version"]
                             == "2", 30)
        time.sleep(1)
        done.set()
    # A dropped connection raises in its load thread: .result() re-raises it here.
    sent = sum(f.result() for f in loads)
    assert swapped and failures == [] and sent > 0


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(served):
    project, server, _ = served
    store = project.store()
    serving = httpx.get(f"{server.url}/models").json()["champion"]
    broken = store.client.create_model_version(store.model_name, "file:///nonexistent/model")
    store.client.set_registered_model_alias(store.model_name, CHAMPION, broken.version)
    assert wait_until(lambda: str(broken.version) in httpx.get(f"{server.url}/models").json()["errors"], 30), \
        str(httpx.get(f"{server.url}/models").json())
    answer = httpx.post(f"{server.url}/predict", json=_records(1)[0])
    assert answer.status_code == 200 and answer.json()["model_version"] == serving
    store.client.set_registered_model_alias(store.model_name, CHAMPION, serving)


def test_an_unknown_category_is_served_as_missing_by_default(served):
    _, server, logs = served
    record = {**_records(1)[0], "region": "atlantis"}
    answer = httpx.post(f"{server.url}/predict", json=record)
    assert answer.status_code == 200
    # Predicted exactly as a missing region is, and the value itself reaches the log for the monitor.
    as_missing = httpx.post(f"{server.url}/predict", json={**record, "region": None}).json()
    assert answer.json()["probabilities"] == as_missing["probabilities"]
    rid = answer.json()["request_id"]

    def logged_regions() -> set:
        log = read_log(logs / "predictions")
        return set(log.loc[log["request_id"] == rid, "region"]) if len(log) else set()
    assert wait_until(lambda: logged_regions() == {"atlantis"}, 15)
    assert httpx.get(f"{server.url}/predict").status_code == 405


def test_bearer_token_and_the_reject_policy_for_unknown_categories(tmp_path):
    project = make_project(tmp_path / "proj")
    project.train()
    server = Server(project, tmp_path / "logs", token="s3cret", unknown_category="reject", anonymous_labels=False)
    auth = {"authorization": "Bearer s3cret"}
    try:
        record = _records(1)[0]
        assert httpx.post(f"{server.url}/predict", json=record).status_code == 401
        wrong = httpx.post(f"{server.url}/predict", json=record, headers={"authorization": "Bearer s3cre"})
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        # No label token: no labels, from anyone, and the predict token is not one.
        for headers in ({}, auth):
            refused = httpx.post(f"{server.url}/feedback", json={"request_id": "x", "label": 1}, headers=headers)
            assert refused.status_code == 403, refused.text
        assert "may not post labels" in refused.json()["detail"]
        ok = httpx.post(f"{server.url}/predict", json=record, headers=auth)
        assert ok.status_code == 200
        assert httpx.get(f"{server.url}/health").status_code == 200
        refused = httpx.post(f"{server.url}/predict", json=[record, {**record, "region": "atlantis"}], headers=auth)
        assert refused.status_code == 422
        assert "record 1" in refused.text and "'region'" in refused.text and "atlantis" in refused.text
        assert "'north'" in refused.text  # the known categories are listed
        missing = httpx.post(f"{server.url}/predict", json={**record, "region": None}, headers=auth)
        assert missing.status_code == 200  # missing is not unknown
    finally:
        server.stop()
