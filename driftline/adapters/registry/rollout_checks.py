"""The evidence a rollout step is judged on: the prediction log's window of the two versions
under test (waited for until enough traffic arrived), and the blue-green smoke test against the
live model server."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from driftline.adapters.protocols import PredictionLog
from driftline.adapters.registry.lease import Lease
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.serving_client import ServerUnavailable, ServingClient, client_records
from driftline.config import Params, RolloutConfig, Settings
from driftline.core import frames
from driftline.core.evaluation import row_scores
from driftline.core.rollout import Analysis, analyze, judge_smoke
from driftline.core.validation import Check
from driftline.waiting import Every


def window(log: PredictionLog, since: pd.Timestamp, baseline_since: pd.Timestamp,
           versions: tuple[str | None, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The challenger's rows since this step began, and the champion's since the rollout began:
    at a 100% step the champion gets no traffic, so its baseline is what it answered before.
    Only rows of the two versions under test count: rows another version answered (a rollout
    before this one, a version swapped in meanwhile) are not evidence about these two."""
    champion, challenger = versions
    first = min(since, baseline_since).to_pydatetime()
    preds, feedback = log.since(first)
    if len(preds):
        when = pd.to_datetime(preds["timestamp"], utc=True, format="ISO8601")  # any ISO precision
        version = preds["model_version"].astype(str)
        is_champion = preds["variant"] == "champion"
        preds = preds[(is_champion & (version == str(champion)) & (when >= baseline_since))
                      | (~is_champion & (version == str(challenger)) & (when >= since))]
    return preds, feedback


def analyze_when_ready(log: PredictionLog, since: pd.Timestamp, baseline_since: pd.Timestamp,
                       cfg: RolloutConfig, shadow: bool, versions: tuple[str | None, str], lease: Lease,
                       say: Callable[[str], None] = lambda line: None) -> Analysis:
    """Wait out the window, then until enough challenger traffic has arrived, and judge it.
    Each poll checks that the caller still holds the rollout lease (LeaseLost otherwise); `say`
    hears how far the wait is every 15 s."""
    start = time.monotonic()
    progress = Every(15.0)
    # The window in one-second sleeps, not one long one: Prefect delivers a flow's timeout or
    # cancellation to this thread between Python instructions (pytest-timeout's SIGALRM handler, or
    # a worker thread, rules out its alarm), so one 600 s sleep held a timed-out deploy for 600 s.
    while (left := cfg.window_seconds - (time.monotonic() - start)) > 0:
        time.sleep(min(1.0, left))
        if progress.due():
            say(f"analysis window: {cfg.window_seconds - left:.0f} of {cfg.window_seconds:.0f} s")
    while True:
        lease.check()
        rows, feedback = window(log, since, baseline_since, versions)
        result = analyze(rows, feedback, cfg, shadow=shadow)
        if result.ready or time.monotonic() - start > cfg.max_wait_seconds:
            return dataclasses.replace(result, evidence=rows)
        if progress.due():
            arm = "shadow" if shadow else "challenger"
            say(f"waiting for traffic: {result.counts.get(arm, 0):,} of {cfg.min_requests:,} {arm} requests "
                f"after {time.monotonic() - start:.0f} s (rolls back after {cfg.max_wait_seconds:.0f} s)")
        time.sleep(min(2.0, cfg.window_seconds))


def refused(name: str, detail: str) -> Analysis:
    """A step that failed before it could be judged on evidence."""
    return Analysis(ready=True, checks=[Check(name, False, detail)])


@dataclass(frozen=True)
class Offline:
    """A version's reference sample and what the registered model answers offline for its first
    rows: what a server must answer for the same rows (blue-green's and staging's smoke tests)."""

    model: object
    x: pd.DataFrame  # the reference sample as model inputs
    smoke: pd.DataFrame  # its first rows, sent one request each
    expected: list
    scores: list[float] | None


def offline(store: MlflowStore, p: Params, version: str, rows: int) -> Offline | None:
    """None when the version was registered without a reference sample."""
    info = next(v for v in store.versions() if v.version == version)
    model, reference = store.load_model(info), store.load_reference(info)
    if reference is None:
        return None
    x = frames.model_features(reference, model, p.data)
    smoke = x.head(rows)
    expected = [v.item() if hasattr(v, "item") else v for v in model.predict(smoke)]
    scores = row_scores(model.predict_proba(smoke)).tolist() if hasattr(model, "predict_proba") else None
    return Offline(model, x, smoke, expected, scores)


def ask_each(client: ServingClient, x: pd.DataFrame, smoke: bool = False) -> list[tuple[int, dict]]:
    """Each row in a request of its own: (status, body). A body that is not JSON (a proxy's error
    page) is kept as its text, to be judged as the failure it is; ServerUnavailable when none came."""
    answers = []
    for record in client_records(x):
        response = client.predict([record], smoke=smoke)
        try:
            answers.append((response.status_code, response.json()))
        except ValueError:
            answers.append((response.status_code, {"detail": response.text[:300]}))
    return answers


def smoke_test(store: MlflowStore, settings: Settings, p: Params, version: str) -> Analysis:
    """Blue-green: wait until the live server has loaded the staged version (next to the
    champion, which keeps answering), then send it reference rows and compare with offline."""
    with _client(settings) as client:
        try:
            state = client.wait_for(lambda m: (m["challenger"] == version and m["strategy"] == "blue-green")
                                    or version in m["errors"], p.rollout.max_wait_seconds)
        except TimeoutError as err:
            return refused("loaded", str(err))
        if version in state["errors"]:
            return refused("loaded", f"the server could not load version {version}: {state['errors'][version]}")
        ref = offline(store, p, version, p.rollout.as_strategy("blue-green").smoke_requests)
        if ref is None:
            return refused("reference", f"version {version} has no reference sample")
        try:
            answers = ask_each(client, ref.smoke, smoke=True)
        except ServerUnavailable as err:
            return refused("smoke test", str(err))
    return judge_smoke(version, answers, ref.expected, ref.scores)


@dataclass(frozen=True)
class Switch:
    """Whether the production servers serve `version` as champion after an alias moved."""

    stuck: list[str]  # servers that answer but still serve another version, each with why
    text: str

    @property
    def ok(self) -> bool:
        return not self.stuck


def switched(settings: Settings, version: str, timeout: float) -> Switch:
    """After a promotion or a rollback: each server the settings know of (DRIFTLINE_SERVE_REPLICAS,
    else the one address) should answer from `version`. A server that answers and still serves
    another (its new champion did not load: /models names the error) is stuck; one that does not
    answer at all is only noted (when it starts it loads what the aliases say)."""
    start, parts, stuck = time.monotonic(), [], []
    for url in settings.serve.servers:
        left = max(timeout - (time.monotonic() - start), 1.0)
        with ServingClient.of(settings.serve, url) as client:
            try:
                client.models()
                state = client.wait_for(lambda m: m.get("champion") == version, left)
            except ServerUnavailable:
                parts.append(f"no server answered at {url}; not checked")
                continue
            except TimeoutError:
                try:
                    seen = client.models()
                except ServerUnavailable:
                    seen = {}
                why = seen.get("errors", {}).get(version, "the version is not loaded")
                stuck.append(f"{url} still serves version {seen.get('champion', '?')}: {why}")
                continue
        kept = f", version {state['previous']} kept warm" if state.get("previous") in state.get("loaded", []) else ""
        parts.append(f"{url} switched in {time.monotonic() - start:.1f} s{kept}")
    return Switch(stuck, "; ".join(stuck + parts))


def _client(settings: Settings) -> ServingClient:
    return ServingClient.of(settings.serve)
