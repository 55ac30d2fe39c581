"""Windows the monitor judged before, re-judged when their labels arrive (months later, in
lending): which ones to read again, and what the estimate then turns out to have missed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from driftline.core.estimation import Realized

SLACK = 1.0  # seconds: an id's issue time is whole seconds, the log's time a little later


@dataclass(frozen=True)
class PastWindow:
    run_id: str  # the monitor run that judged it
    version: str  # the champion it judged
    first: str  # the log's ISO times of its first and last row
    last: str
    estimated: dict[str, float] = field(default_factory=dict)  # metric -> the estimate recorded then
    labels_seen: float = -1.0  # labels counted for it when last judged; -1: never counted

    @property
    def start(self) -> float:
        return datetime.fromisoformat(self.first).timestamp()

    @property
    def end(self) -> float:
        return datetime.fromisoformat(self.last).timestamp()


def tile(windows: list[PastWindow], before: str) -> list[PastWindow]:
    """Newest first, the windows that end before `before` and overlap no newer one kept: an hourly
    monitor over a 24 h window judges each hour 24 times; the newest judgement of a stretch
    stands for it."""
    kept: list[PastWindow] = []
    limit = datetime.fromisoformat(before).timestamp()
    for w in sorted(windows, key=lambda w: w.last, reverse=True):
        if w.end < limit:
            kept.append(w)
            limit = w.start
    return kept


def labels_per_window(windows: list[PastWindow], issued: np.ndarray) -> list[int]:
    """How many of the labels (their request ids' issue times, epoch seconds) name a row of each window."""
    issued = np.sort(issued[np.isfinite(issued)])
    return [int(np.searchsorted(issued, w.end + SLACK, "right") - np.searchsorted(issued, w.start - SLACK, "left"))
            for w in windows]


def pending(windows: list[PastWindow], issued: np.ndarray, limit: int) -> list[tuple[PastWindow, int]]:
    """The windows (newest first, at most `limit`) that labels arrived for since they were last
    judged, each with the labels it now has."""
    found = [(w, n) for w, n in zip(windows, labels_per_window(windows, issued), strict=True) if n > w.labels_seen]
    return found[:limit]


def errors(estimated: dict[str, float], realized: Realized) -> dict[str, float]:
    """Estimated minus realized, for each metric both have."""
    return {m: estimated[m] - realized.metrics[m].value for m in estimated if m in realized.metrics
            and np.isfinite(estimated[m]) and np.isfinite(realized.metrics[m].value)}


@dataclass(frozen=True)
class Rejudged:
    """An earlier window judged again on its labels: realized beside what was estimated then."""

    window: PastWindow
    judged: object  # window_performance.Judged
    errors: dict[str, float]  # estimated minus realized, by metric
    labels: int
