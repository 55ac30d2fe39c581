"""The model server's metrics, scraped by Prometheus (ops/prometheus): what it counts as it
answers (`ServerMetrics`), and what is read when scraped: the prediction log's row counts and
what the registry watcher last saw."""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from driftline.adapters.predlog import PartitionedLog
from driftline.serving.loader import Watcher


class LogCounters:
    """`written`, `dropped` and `quarantined` rows of each log, read when Prometheus scrapes."""

    def __init__(self, logs: dict[str, PartitionedLog]):
        self.logs = logs

    def collect(self):
        family = CounterMetricFamily("driftline_log_rows", "Log rows by outcome", labels=["log", "outcome"])
        for name, plog in self.logs.items():
            for outcome in ("written", "dropped", "quarantined"):
                family.add_metric([name, outcome], getattr(plog, outcome))
        yield family


class RegistryGauges:
    """What the watcher last read from the registry, for the dashboard and the alerts of
    ops/prometheus: the versions served and the challenger's weight, when the live rollout lease
    was taken and when the drift monitor last completed a check (absent: none, never)."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def collect(self):
        r = self.watcher.current.rollout
        served = GaugeMetricFamily("driftline_served_version", "1 per served role and version",
                                   labels=["role", "version"])
        for role, version in (("champion", r.champion), ("challenger", r.challenger)):
            if version:
                served.add_metric([role, version], 1)
        yield served
        yield GaugeMetricFamily("driftline_challenger_weight", "Share of traffic the challenger gets",
                                value=r.weight if r.challenger else 0.0)
        models = self.watcher.current.models
        plans = GaugeMetricFamily("driftline_serving_plan", "1 per loaded version: answered by its compiled "
                                  "plan (path=plan) or by its Pipeline (path=pipeline)", labels=["version", "path"])
        for version, m in sorted(models.items()):
            plans.add_metric([version, "plan" if m.plan is not None else "pipeline"], 1)
        yield plans
        yield CounterMetricFamily("driftline_plan_refused", "Loaded versions whose compiled plan differed from "
                                  "their Pipeline at load (served by the Pipeline)", value=self.watcher.plans_refused)
        if r.lease_since is not None:
            yield GaugeMetricFamily("driftline_rollout_lease_acquired_timestamp_seconds",
                                    "When the live rollout lease was taken", value=r.lease_since)
        if r.drift_checked_at is not None:
            yield GaugeMetricFamily("driftline_last_drift_check_timestamp_seconds",
                                    "When the drift monitor last completed a check", value=r.drift_checked_at)
        moved = GaugeMetricFamily("driftline_alias_moved_without_record", "1 for an alias that points "
                                  "elsewhere than its last recorded change", labels=["alias"])
        for alias in r.unrecorded:
            moved.add_metric([alias], 1)
        yield moved
        future = GaugeMetricFamily("driftline_future_timestamp", "1 for a registry time stamp read from the "
                                   "future, and ignored", labels=["stamp"])
        for name in r.future:
            future.add_metric([name], 1)
        yield future
        yield GaugeMetricFamily("driftline_champion_fallback", "1 while @previous answers in place of a @champion "
                                "that would not load", value=1.0 if r.fallback else 0.0)
        failed = GaugeMetricFamily("driftline_version_load_failed", "1 per aliased version this server could not "
                                   "load (a @previous among them cannot be rolled back to)", labels=["version"])
        for version in self.watcher.current.errors:
            failed.add_metric([version], 1)
        yield failed
        yield GaugeMetricFamily("driftline_registry_unread", "1 while the registry has not been read since start",
                                value=1.0 if self.watcher.registry_error else 0.0)
        if r.performance:
            yield from performance_gauges(r.performance)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def performance_gauges(verdict: dict):
    """The drift monitor's newest verdict on the champion's primary metric (monitor_windows.publish):
    estimated and realized with their 95% bounds, the holdout value and the limit; whether each
    rule found it declined; the label coverage; the newest estimation error (estimated minus
    realized, on an earlier window whose labels arrived)."""
    metric = str(verdict.get("metric", ""))
    values = GaugeMetricFamily("driftline_performance", "The champion's primary metric as the drift monitor "
                               "last judged it", labels=["metric", "source", "bound"])
    for source in ("estimated", "realized"):
        for bound, key in (("value", source), ("low", f"{source}_low"), ("high", f"{source}_high")):
            if (v := _number(verdict.get(key))) is not None:
                values.add_metric([metric, source, bound], v)
    for source in ("holdout", "limit"):
        if (v := _number(verdict.get(source))) is not None:
            values.add_metric([metric, source, "value"], v)
    yield values
    declined = GaugeMetricFamily("driftline_performance_declined", "1 when the monitor found the primary metric "
                                 "past its limit (estimated, or realized on labels)", labels=["metric", "source"])
    for source in ("estimated", "realized"):
        if (v := _number(verdict.get(f"declined_{source}"))) is not None:
            declined.add_metric([metric, source], v)
    yield declined
    if (v := _number(verdict.get("coverage"))) is not None:
        yield GaugeMetricFamily("driftline_label_coverage", "Share of the monitor's window with a label", value=v)
    if (v := _number(verdict.get("estimation_error"))) is not None:
        error = GaugeMetricFamily("driftline_estimation_error", "Estimated minus realized primary metric on the "
                                  "newest earlier window whose labels arrived", labels=["metric"])
        error.add_metric([metric], v)
        yield error


class ServerMetrics:
    """Every instrument of one model server, in a registry of its own (two servers in one process,
    as in the tests, count apart)."""

    def __init__(self, logs: dict[str, PartitionedLog], watcher: Watcher):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("driftline_requests", "Prediction requests", ["variant", "version", "status"],
                                registry=registry)
        self.refused = Counter("driftline_refused_requests", "Requests answered other than 200", ["path", "status"],
                               registry=registry)
        self.latency = Histogram("driftline_request_seconds", "Prediction latency", ["variant", "version"],
                                 registry=registry, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.scores = Histogram("driftline_prediction_score", "Prediction score", ["variant", "version"],
                                registry=registry, buckets=tuple(i / 10 for i in range(1, 11)))
        self._cached: dict[tuple[str, str, str], tuple] = {}
        registry.register(LogCounters(logs))
        registry.register(RegistryGauges(watcher))

    def answered(self, variant: str, version: str, status: str, seconds: float | None = None,
                 scores: Iterable[float] = ()) -> None:
        """One request answered by `version` as `variant`, with its latency and scores. `status`: "ok",
        "error", or "input_error" (a challenger failed on rows the champion could not answer either:
        the challenger error alert, which reads "error", does not count it)."""
        requests, latency, histogram = self._children(variant, version, status)
        requests.inc()
        if seconds is not None:
            latency.observe(seconds)
        for s in scores:
            histogram.observe(float(s))

    def _children(self, variant: str, version: str, status: str) -> tuple:
        """The instruments' children for these labels, looked up once (`labels()` costs ~3 µs a call,
        three a request)."""
        key = (variant, version, status)
        found = self._cached.get(key)
        if found is None:
            found = self._cached[key] = (self.requests.labels(variant, version, status),
                                         self.latency.labels(variant, version), self.scores.labels(variant, version))
        return found

    def refuse(self, path: str, status: int) -> None:
        self.refused.labels(path, str(status)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
