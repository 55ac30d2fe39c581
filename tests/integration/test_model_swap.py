"""The server swaps a model in only after it has loaded and answered a smoke prediction: a version
that loads but cannot predict its own input example is refused, and the old champion keeps
answering (the README's hot-swap rule)."""

from __future__ import annotations

import httpx
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from driftline.adapters.registry.store import CHAMPION
from driftline.adapters.serving_client import client_records
from driftline.config import load_params
from driftline.core import demo_data, frames
from tests.integration.conftest import make_project
from tests.integration.test_serving import Server
from tests.waiting import wait_until


def _refuse_to_predict(frame):
    raise RuntimeError("this model cannot predict (smoke test bait)")


def test_a_version_that_fails_its_smoke_prediction_is_not_swapped_in(tmp_path):
    project = make_project(tmp_path / "proj")
    project.train()
    server = Server(project, tmp_path / "logs")
    try:
        store = project.store()
        p = load_params(project.root / "params.yaml")
        example = frames.features(demo_data.generate(5, 1), p.data)
        # Fitted piece by piece: fitting the pipeline would call the transform that refuses.
        broken = Pipeline([("boom", FunctionTransformer(_refuse_to_predict).fit(example)),
                           ("model", DummyClassifier().fit(example, [0, 1, 0, 1, 0]))])
        run_id = store.start_run("broken", tags={})
        uri = store.log_model(run_id, broken, example, [0] * len(example))
        version = store.register(uri, run_id, {}, CHAMPION, "a model that cannot predict").version
        assert store.aliases()[CHAMPION] == version == "2"

        def refused() -> bool:
            errors = httpx.get(f"{server.url}/models").json()["errors"]
            return version in errors
        assert wait_until(refused, 30), httpx.get(f"{server.url}/models").json()
        models = httpx.get(f"{server.url}/models").json()
        assert "this model cannot predict (smoke test bait)" in models["errors"][version]
        assert models["champion"] == "1" and models["loaded"] == ["1"]
        answer = httpx.post(f"{server.url}/predict", json=client_records(example)[0])
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    finally:
        server.stop()
