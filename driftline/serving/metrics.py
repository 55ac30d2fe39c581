"""The model server's metrics that are read, not counted: the prediction log's row counts and
what the registry watcher last saw. Scraped by Prometheus (ops/prometheus)."""

from __future__ import annotations

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
        if r.lease_since is not None:
            yield GaugeMetricFamily("driftline_rollout_lease_acquired_timestamp_seconds",
                                    "When the live rollout lease was taken", value=r.lease_since)
        if r.drift_checked_at is not None:
            yield GaugeMetricFamily("driftline_last_drift_check_timestamp_seconds",
                                    "When the drift monitor last completed a check", value=r.drift_checked_at)
