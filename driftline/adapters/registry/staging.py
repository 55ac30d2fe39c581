"""The staging check, before any production traffic: the challenger served by the staging model
server (DRIFTLINE_STAGING_URL, a `driftline serve --role staging`, which serves @challenger
alone) and tested there over HTTP, inside the serving infrastructure:

- the smoke test: reference rows answered, by that version, as the registered model answers
  them offline (a missing dependency or a wrong input conversion on the server shows up here);
- the behavioural tests of `evaluation.behavioral`, with every prediction they need fetched
  from the staging server."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.adapters.registry.rollout_checks import ask_each, offline, refused
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.serving_client import ServerUnavailable, ServingClient, client_records
from driftline.config import Params, Settings
from driftline.core import frames
from driftline.core.evaluation import behavioral
from driftline.core.rollout import Analysis, judge_smoke
from driftline.core.validation import Check

SMOKE_ROWS = 50
CHUNK = 256  # records per request: a behavioural test's 2,000 rows in a few requests, each well under the body limit


class ServedModel:
    """What `evaluation.behavioral` asks of a model, answered by a model server over HTTP. The
    classes and the decision threshold are the registered model's: the server answers with them."""

    classes_: np.ndarray  # copied from the registered model when it has them, as threshold and pos_label

    def __init__(self, client: ServingClient, registered, version: str):
        self.client, self.version = client, version
        for name in ("classes_", "threshold", "pos_label"):
            if hasattr(registered, name):
                setattr(self, name, getattr(registered, name))

    def _answers(self, x: pd.DataFrame) -> list[dict]:
        out = []
        records = client_records(x)
        for start in range(0, len(records), CHUNK):
            response = self.client.predict(records[start:start + CHUNK])
            if response.status_code != 200:
                raise ServerUnavailable(f"staging answered HTTP {response.status_code}: {response.text[:300]}")
            try:
                body = response.json()
            except ValueError:
                raise ServerUnavailable(f"staging answered a body that is not JSON: {response.text[:300]}") from None
            if str(body.get("model_version")) != self.version:
                raise ServerUnavailable(f"staging answered with version {body.get('model_version')}, "
                                        f"not {self.version}")
            out.append(body)
        return out

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        keys = [str(c) for c in self.classes_]
        return np.array([[p[k] for k in keys] for body in self._answers(x) for p in body["probabilities"]])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.array([v for body in self._answers(x) for v in body["predictions"]])


def check(store: MlflowStore, settings: Settings, p: Params, version: str) -> Analysis:
    """Wait until staging serves `version`, then the smoke test and the behavioural tests there."""
    if not settings.staging_url:
        return refused("staging server", "rollout.staging is on and DRIFTLINE_STAGING_URL is not set")
    with ServingClient.of(settings.serve, settings.staging_url) as client:
        try:
            state = client.wait_for(lambda m: m.get("champion") == version or version in m.get("errors", {}),
                                    p.rollout.max_wait_seconds)
        except (TimeoutError, ServerUnavailable) as err:
            return refused("staging server", str(err))
        if version in state["errors"]:
            return refused("staging server", f"staging could not load version {version}: {state['errors'][version]}")
        ref = offline(store, p, version, SMOKE_ROWS)
        if ref is None:
            return refused("reference", f"version {version} has no reference sample")
        try:
            answers = ask_each(client, ref.smoke)
        except ServerUnavailable as err:
            return refused("staging smoke test", str(err))
        result = judge_smoke(version, answers, ref.expected, ref.scores)
        try:
            tests = behavioral(ServedModel(client, ref.model, version), ref.x, frames.typical_record(ref.x, p.data), p)
        except ServerUnavailable as err:
            return Analysis(ready=True, checks=[*result.checks, Check("behavioral tests on staging", False, str(err))])
    checks = [Check(f"behavioral on staging: {t.name}", t.passed, f"{t.name}: {t.detail}") for t in tests]
    return Analysis(ready=True, checks=[*result.checks, *checks])
