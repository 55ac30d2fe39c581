"""What the server serves: the rollout state read from the registry, and loaded models that
have answered a smoke prediction. Reads only; nothing here can move an alias."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from driftline.adapters.registry import history, monitor_windows, rollout_state
from driftline.adapters.registry.drift_events import checked_at
from driftline.adapters.registry.rollout_state import STRATEGY_TAG, WEIGHT_TAG  # noqa: F401 - defined with the lease that guards them
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.adapters.registry.tags import CHECK_TAG, when
from driftline.core.features import datetime_inputs
from driftline.core.plan import Plan
from driftline.core.training import known_categories

log = logging.getLogger("driftline.serving")


@dataclass(frozen=True)
class Rollout:
    champion: str | None
    challenger: str | None
    strategy: str = "none"
    weight: float = 0.0
    previous: str | None = None  # kept loaded, so a rollback is a swap, not a load
    ignored: str = ""  # rollout tags not served, and why (a dead rollout, until reconciled)
    # For Prometheus (ops/prometheus/rules.yml): when the live rollout lease was taken, and when
    # the drift monitor last completed a check; None: no live lease, never checked.
    lease_since: float | None = None
    drift_checked_at: float | None = None
    future: tuple[str, ...] = ()  # registry time stamps read from the future, and ignored
    unrecorded: tuple[str, ...] = ()  # aliases moved without a history record (history.unrecorded)
    performance: dict | None = None  # the monitor's newest performance verdict (monitor_windows.publish)
    # time.monotonic() after which the split stops (the rollout lease's expiry as read, clamped):
    # while the registry does not answer, a canary whose deploy died must not keep its share.
    split_until: float | None = None
    fallback: str = ""  # why @previous answers as champion (the champion would not load), if it does

    def splits(self) -> bool:
        """The challenger takes a share of the traffic (canary) or a copy of it (shadow) now."""
        return self.split_until is None or time.monotonic() < self.split_until


@dataclass(frozen=True)
class Loaded:
    version: str
    model: Any  # the registered sklearn Pipeline
    columns: dict[str, str]  # input column -> "double" | "string" (from the signature)
    example: pd.DataFrame
    classification: bool
    categories: dict[str, set] = field(default_factory=dict)  # categorical input -> categories it was fitted on
    datetimes: frozenset[str] = frozenset()  # inputs its derive step reads as times: ISO 8601 only
    plan: Plan | None = None  # its serving plan (core.plan), equal to the Pipeline bit for bit; None: the Pipeline
    plan_note: str = ""  # why the Pipeline serves it, when it does
    plan_refused: bool = False  # a plan was compiled and differed from the Pipeline (or failed)

    @cached_property
    def class_names(self) -> list[str]:
        """The keys of an answer's probabilities, in the model's class order."""
        return [str(c.item() if hasattr(c, "item") else c) for c in getattr(self.model, "classes_", [])]

    @cached_property
    def example_records(self) -> list[dict]:
        """The input example as records: a control that tells a bad request from a broken model."""
        return self.example.to_dict("records")

    def frame(self, records: list[dict]) -> pd.DataFrame:
        """Records as the model's input frame; the caller has checked them against `columns`.

        Built column by column from plain lists: `DataFrame.from_records` plus per-column
        conversion cost ~6 ms for a 16-row batch, a tenth of the server's time at saturation."""
        nan = float("nan")
        data = {}
        for name, kind in self.columns.items():
            if kind == "double":
                data[name] = np.array([nan if (v := r[name]) is None else v for r in records], dtype="float64")
            else:
                # Object dtype, as training's frames.features gives: pandas 3 would infer `str` and
                # turn None into NaN, and an encoder fitted on None as a category reads NaN as
                # missing: the server answered otherwise than the gated model for such a row.
                data[name] = pd.Series(np.array([r[name] for r in records], dtype=object), dtype=object, copy=False)
        return pd.DataFrame(data, copy=False)


def read_rollout(store: MlflowStore, staging: bool = False) -> Rollout:
    """What to serve. Rollout tags count only while a live rollout lease stands behind them: a
    deploy run killed mid-canary (no hook ran) leaves its tags, and its lease expires ttl later;
    from then on the challenger gets no traffic. The server only reads: the next deploy or
    drift monitor writes the tags back (rollout_state.reconcile)."""
    aliases = store.aliases()
    if staging:  # the staging server: @challenger alone, as its champion; no split, no @previous
        return Rollout(aliases.get(CHALLENGER), None)
    tags = store.model_tags()
    strategy, weight = tags.get(STRATEGY_TAG, "none"), rollout_state.weight(tags)
    # Read on every poll, not only under rollout tags: a rollout stuck before its first canary
    # step holds the lease too, and the lease-age alert must see it.
    active = rollout_state.active(tags)
    holder = rollout_state.live_holder(store) if active else _holder_for_metrics(store)
    since, checked, performance = holder.acquired_at if holder else None, checked_at(tags), monitor_windows.read(tags)
    future = ("drift check",) if checked is None and when(tags.get(CHECK_TAG)) is not None else ()
    if active and holder is None:
        return Rollout(aliases.get(CHAMPION), aliases.get(CHALLENGER), "none", 0.0, aliases.get(PREVIOUS),
                       ignored=f"rollout tags {strategy}/{weight:g} with no live rollout lease", lease_since=since,
                       drift_checked_at=checked, future=future, performance=performance)
    until = None if holder is None else time.monotonic() + max(holder.expires_at - holder.read_at, 0.0)
    return Rollout(aliases.get(CHAMPION), aliases.get(CHALLENGER), strategy, weight, aliases.get(PREVIOUS),
                   lease_since=since, drift_checked_at=checked, future=future, performance=performance,
                   split_until=until if active else None)


def _holder_for_metrics(store: MlflowStore):
    """The lease holder when no rollout tags are set: read for the lease-age gauge only, so a
    failure to read it must not stop the watcher from following the aliases."""
    try:
        return rollout_state.live_holder(store)
    except Exception as err:  # noqa: BLE001 - a gauge, not a decision
        log.warning("rollout lease not read for /metrics: %s", err)
        return None


def load_version(store: MlflowStore, version: str) -> Loaded:
    """Load a version and make it answer its own input example before anyone else sees it."""
    import mlflow.artifacts
    import mlflow.sklearn
    from mlflow.models import Model

    local = mlflow.artifacts.download_artifacts(f"models:/{store.model_name}/{version}",
                                                tracking_uri=store.tracking_uri)
    meta = Model.load(local)
    columns = {c.name: ("double" if c.type.name in ("double", "float", "long", "integer") else "string")
               for c in meta.signature.inputs.inputs}
    example = meta.load_input_example(local)
    model = mlflow.sklearn.load_model(local)
    classification = hasattr(model, "predict_proba")
    loaded = Loaded(version, model, columns, example, classification, known_categories(model),
                    datetime_inputs(model))
    loaded.model.predict(loaded.frame(loaded.example_records))  # the smoke prediction
    return with_plan(store, version, loaded)


def with_plan(store: MlflowStore, version: str, loaded: Loaded) -> Loaded:
    """The loaded model with its serving plan, when the plan equals the Pipeline bit for bit on its
    input example, its reference sample and edge rows (core.plan_check); else the Pipeline serves,
    and `plan_note` says why."""
    from driftline.core import plan_check

    try:
        info = store.version(version)
        reference = store.load_reference(info) if info else None
        samples = [("input example", loaded.example_records)]
        if reference is not None:
            samples.append(("reference sample", plan_check.records_of(reference, loaded.columns)))
    except Exception as err:  # noqa: BLE001 - the Pipeline serves; the reason is shown on /models
        return dataclasses.replace(loaded, plan_note=f"the Pipeline serves: its reference sample was not read "
                                                     f"({type(err).__name__}: {err})")
    if reference is None:
        return dataclasses.replace(loaded, plan_note="the Pipeline serves: no reference sample to check a plan on")
    verdict = plan_check.compile_checked(loaded.model, loaded.columns, loaded.classification, loaded.frame, samples)
    if verdict.plan is None:
        refused = "differ" in verdict.reason or "failed" in verdict.reason
        if refused:
            log.warning("version %s: its serving plan is not used: %s", version, verdict.reason)
        return dataclasses.replace(loaded, plan_note=f"the Pipeline serves: {verdict.reason}", plan_refused=refused)
    log.info("version %s: served by its %s plan (equal to the Pipeline on %d rows)", version, verdict.plan.kind,
             verdict.rows)
    return dataclasses.replace(loaded, plan=verdict.plan,
                               plan_note=f"plan: {verdict.plan.kind}, equal to the Pipeline bit for bit on "
                                         f"{verdict.rows} rows checked at load")


def _alias_of(rollout: Rollout, version: str) -> str:
    names = [a for a, v in (("@champion", rollout.champion), ("@challenger", rollout.challenger),
                            ("@previous", rollout.previous)) if v == version]
    return ", ".join(names) or "no alias"


@dataclass
class ModelSet:
    """The models being served. Swapped as a whole, so a request sees one consistent set."""

    rollout: Rollout
    models: dict[str, Loaded] = field(default_factory=dict)  # version -> Loaded
    errors: dict[str, str] = field(default_factory=dict)  # version -> why it is not served


class Watcher:
    """Polls the registry and converges the served models on its aliases and rollout tags."""

    def __init__(self, store: MlflowStore, poll_seconds: float = 3.0, keep_previous: bool = True,
                 staging: bool = False):
        self.store, self.staging = store, staging
        self.poll_seconds = poll_seconds
        self.keep_previous = keep_previous
        self.current = ModelSet(Rollout(None, None))
        self.plans_refused = 0  # versions whose plan differed from their Pipeline at load (a /metrics counter)
        self._stop = threading.Event()
        self.registry_error = ""  # why the registry has not been read yet (a start during an outage)
        self._thread: threading.Thread | None = None

    def refresh(self) -> ModelSet:
        rollout = self._with_history(read_rollout(self.store, self.staging))
        if rollout.ignored and rollout.ignored != self.current.rollout.ignored:
            log.warning("%s: serving as if no rollout (the next deploy or drift monitor clears them)", rollout.ignored)
        wanted = [v for v in (rollout.champion, rollout.challenger) if v]
        models, errors = {}, {}
        for version in wanted + ([rollout.previous] if self.keep_previous and rollout.previous else []):
            if version in self.current.models:
                models[version] = self.current.models[version]
                continue
            try:
                models[version] = load_version(self.store, version)
                self.plans_refused += models[version].plan_refused
                log.info("loaded %s v%s (%s)", self.store.model_name, version, models[version].plan_note)
            except Exception as err:  # noqa: BLE001 - a bad model must not take the server down
                # @previous too: a rollback to a version that cannot load must be seen before it is needed.
                errors[version] = f"{type(err).__name__}: {err}"
                log.error("version %s (%s) not served: %s", version, _alias_of(rollout, version), errors[version])
        if rollout.champion and rollout.champion not in models:
            if self.current.rollout.champion in self.current.models:
                # The new champion failed to load: keep answering with the old one.
                old = self.current.rollout.champion
                models[old] = self.current.models[old]
                fallback = self.current.rollout.fallback  # still @previous in its place, if it was
            elif rollout.previous in models:
                # Nothing answered yet (a start, or a restart) and the champion will not load:
                # @previous, loaded beside it for rollbacks, answers rather than a 503 to everyone.
                old, fallback = rollout.previous, (f"@champion (version {rollout.champion}) did not load: "
                                                   f"{errors[rollout.champion]}; @previous (version "
                                                   f"{rollout.previous}) answers in its place")
                log.error("%s", fallback)
            else:
                old = None
            if old is not None:
                rollout = dataclasses.replace(rollout, champion=old, fallback=fallback,
                                              challenger=rollout.challenger if rollout.challenger in models else None)
        if rollout.challenger and rollout.challenger not in models:
            rollout = dataclasses.replace(rollout, challenger=None, strategy="none", weight=0.0)
        self.current = ModelSet(rollout, models, errors)
        return self.current

    def _with_history(self, rollout: Rollout) -> Rollout:
        """The aliases checked against their recorded history (history.unrecorded): when they change,
        and every 30 s, not on every poll (the history is a search of its own)."""
        served = (rollout.champion, rollout.challenger, rollout.previous)
        now = time.monotonic()
        if self.staging:
            return rollout
        if served != getattr(self, "_history_served", None) or now - getattr(self, "_history_at", 0.0) > 30:
            try:
                moved = history.unrecorded(self.store)
            except Exception as err:  # noqa: BLE001 - a report, not a decision: keep serving
                log.warning("alias history not read: %s", err)
                moved = {}
            for line in history.describe(moved):
                log.error(line)
            self._history_served, self._history_at, self._moved = served, now, tuple(sorted(moved))
        return dataclasses.replace(rollout, unrecorded=getattr(self, "_moved", ()))

    def start(self) -> None:
        """The first read, then the polls. A registry that does not answer at start is not fatal:
        the server comes up (`/health` answers, `/ready` says 503 and why) and keeps trying at
        each poll, instead of exiting and being restarted in a loop by its supervisor."""
        self._poll()
        self._thread = threading.Thread(target=self._loop, name="registry-watcher", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            self.refresh()
            self.registry_error = ""
        except Exception as err:
            if self._stop.is_set():  # stopped during a slow failing poll: the server is gone, say nothing
                return
            self.registry_error = f"{type(err).__name__}: {err}"
            log.exception("registry poll failed; serving what is loaded")

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._poll()

    def stop(self) -> None:
        """Stop polling. A poll under way against a slow registry is not waited for beyond 2 s
        (the thread is a daemon, and reads only): the server's stop must stay within its 10 s."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=min(self.poll_seconds + 5, 2.0))
