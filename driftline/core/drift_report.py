"""The drift monitor's HTML report, drawn from what the decision already computed.

The decision's per-column scores, thresholds, sampling noise and data quality go in as they
are; each feature's distribution, reference against window, is binned here over every row of
the window with NumPy and drawn as inline SVG. The page is self-contained (no scripts, no
network) and every text that came from a request or a config is escaped: a category value is
whatever a client sent. Evidently's interactive report stays available
(`monitoring.report: evidently`), at about 3 s of plotly figures whatever the sample size.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.core import performance_tables as tables
from driftline.core.drift import ColumnDrift, shares
from driftline.core.monitoring import answered_by

BINS = 30
TOP_CATEGORIES = 12
WIDTH, HEIGHT = 420, 130
REFERENCE_COLOUR, CURRENT_COLOUR = "#9aa5b1", "#1f77b4"


@dataclass(frozen=True)
class Distribution:
    labels: list[str]  # a bin's lower edge, or a category
    reference: np.ndarray  # shares of the non-missing values
    current: np.ndarray
    stats: list[tuple[str, str, str]]  # (statistic, reference, window)


def _numbers(values: pd.Series) -> np.ndarray:
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return out[np.isfinite(out)]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def numeric_distribution(reference: pd.Series, current: pd.Series) -> Distribution:
    """Shares in BINS equal bins over the reference's range widened to the window's 0.1–99.9%
    quantiles (a far outlier would squeeze every other bar into one); values beyond fall in the
    end bins."""
    ref, cur = _numbers(reference), _numbers(current)
    # The window's range from at most ~100,000 evenly spaced values: it only places the bins.
    spaced = cur[::max(1, cur.size // 100_000)]
    bounds = ([float(ref.min()), float(ref.max())] if ref.size else []) + \
        ([float(q) for q in np.quantile(spaced, [0.001, 0.999])] if cur.size else [])
    if not bounds:
        return Distribution([], np.zeros(0), np.zeros(0), [])
    lo, hi = min(bounds), max(bounds)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, BINS + 1)

    def shares(a: np.ndarray) -> np.ndarray:
        # Equal widths: a value's bin is arithmetic, no search (the last edge falls in the last bin).
        index = np.clip(((a - lo) * (BINS / (hi - lo))).astype(np.int64), 0, BINS - 1)
        return np.bincount(index, minlength=BINS) / max(a.size, 1)

    def describe(a: np.ndarray) -> list[str]:
        if not a.size:
            return ["-"] * 5
        return [_fmt(a.mean()), _fmt(a.std()), _fmt(a.min()), _fmt(float(np.median(a))), _fmt(a.max())]

    stats = list(zip(["mean", "std", "min", "median", "max"], describe(ref), describe(cur), strict=True))
    return Distribution([_fmt(e) for e in edges[:-1]], shares(ref), shares(cur), stats)


def categorical_distribution(reference: pd.Series, current: pd.Series) -> Distribution:
    """Shares of the TOP_CATEGORIES values most frequent on either side, the rest as "(other)"."""
    # The drift tests' own shares: counted in the column's dtype (the log reads categoricals as
    # categories), keyed by every value either side holds.
    ref, cur = shares(reference, current)
    keys = ref.index
    top = np.maximum(ref, cur).sort_values(ascending=False, kind="stable").index[:TOP_CATEGORIES]
    labels = [str(k) for k in top]
    ref_shares, cur_shares = ref[top].to_numpy(), cur[top].to_numpy()
    if len(keys) > len(top):
        labels.append("(other)")
        ref_shares = np.append(ref_shares, 1 - ref_shares.sum())
        cur_shares = np.append(cur_shares, 1 - cur_shares.sum())
    unseen = float(cur[~cur.index.isin(ref[ref > 0].index)].sum())
    stats = [("distinct values", str(int((ref > 0).sum())), str(int((cur > 0).sum()))),
             ("most frequent", f"{ref.idxmax()} ({ref.max():.1%})" if len(ref) and ref.max() > 0 else "-",
              f"{cur.idxmax()} ({cur.max():.1%})" if len(cur) and cur.max() > 0 else "-"),
             ("share of values the reference never had", "-", f"{unseen:.2%}")]
    return Distribution(labels, ref_shares, cur_shares, stats)


def _svg(d: Distribution, numeric: bool) -> str:
    """Reference (grey, filled) and window (blue, outlined) shares; categories as horizontal bars."""
    if not d.labels:
        return "<p>no values on either side</p>"
    top = max(float(d.reference.max()), float(d.current.max()), 1e-12)
    height = HEIGHT if numeric else 16 * len(d.labels) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img">']
    if numeric:
        step = WIDTH / len(d.labels)
        for i, (r, c) in enumerate(zip(d.reference, d.current, strict=True)):
            x, hr, hc = i * step, (HEIGHT - 14) * r / top, (HEIGHT - 14) * c / top
            parts.append(f'<rect x="{x:.1f}" y="{HEIGHT - 14 - hr:.1f}" width="{step - 1:.1f}" height="{hr:.1f}" '
                         f'fill="{REFERENCE_COLOUR}"><title>from {escape(d.labels[i])}: reference {r:.2%}, '
                         f'window {c:.2%}</title></rect>')
            parts.append(f'<rect x="{x:.1f}" y="{HEIGHT - 14 - hc:.1f}" width="{step - 1:.1f}" height="{hc:.1f}" '
                         f'fill="none" stroke="{CURRENT_COLOUR}" stroke-width="1.5"/>')
        parts.append(f'<text x="0" y="{HEIGHT - 2}" font-size="10">{escape(d.labels[0])}</text>')
        parts.append(f'<text x="{WIDTH}" y="{HEIGHT - 2}" font-size="10" text-anchor="end">'
                     f'{escape(d.labels[-1])}…</text>')
    else:
        label_width, bar_width = 150, WIDTH - 150
        for i, (label, r, c) in enumerate(zip(d.labels, d.reference, d.current, strict=True)):
            y = 4 + 16 * i
            parts.append(f'<text x="{label_width - 4}" y="{y + 11}" font-size="11" text-anchor="end">'
                         f'<title>{escape(label)}</title>{escape(label[:24])}</text>')
            parts.append(f'<rect x="{label_width}" y="{y}" width="{bar_width * r / top:.1f}" height="7" '
                         f'fill="{REFERENCE_COLOUR}"><title>reference {r:.2%}</title></rect>')
            parts.append(f'<rect x="{label_width}" y="{y + 7}" width="{bar_width * c / top:.1f}" height="7" '
                         f'fill="{CURRENT_COLOUR}"><title>window {c:.2%}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


STYLE = ("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child"
         "{text-align:left}.drifted{color:#c62828;font-weight:bold}section{margin:18px 0}"
         ".key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _score_row(c: ColumnDrift, quality: dict) -> list[str]:
    q = quality.get(c.column)
    verdict = '<span class="drifted">drifted</span>' if c.drifted else "no"
    if c.drifted and c.noise is not None and c.score <= c.noise:
        verdict += " (within sampling noise)"
    return [escape(c.column), escape(c.method), _fmt(c.score), _fmt(c.threshold),
            "-" if c.noise is None else _fmt(c.noise), verdict,
            "-" if q is None else f"{q.missing_reference:.1%} / {q.missing_current:.1%}",
            "-" if q is None else f"{q.unknown_share:.2%}"]


def _performance(result, p: Params) -> str:
    """The estimate with its bounds beside the realized values, by score band with the labels'
    coverage, and the earlier windows re-judged on their labels (core.performance_tables)."""
    judged, metric = result.judged, p.evaluation.primary_metric
    parts = []
    if judged is not None and judged.estimate is not None:
        parts += [f"<h2>Performance ({escape(judged.estimate.source)})</h2>",
                  _table(*_escaped(*tables.metric_rows(judged, result.holdout))),
                  "<h3>By score band</h3>", _table(*_escaped(*tables.band_rows(judged.bands,
                                                                               p.data.task == "regression")))]
    if result.past:
        parts += ["<h2>Earlier windows, on the labels that arrived since</h2>",
                  _table(*_escaped(*tables.past_rows(result.past, metric)))]
    return "".join(parts)


def _escaped(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    return header, [[escape(cell) for cell in row] for row in rows]


def render(rows: pd.DataFrame, reference: pd.DataFrame, p: Params, result, version: str) -> str:
    """The page: the decision, every column's score and quality, then each column's
    distribution (drifted first). `result` is the monitor's `monitoring.Assessment`."""
    d = result.decision
    quality = {q.column: q for q in result.quality}
    kinds = {f.name: f.type for f in p.data.features}
    answered = answered_by(rows, version)  # the score's distribution is the champion's, as assess judged it
    ordered = sorted(result.columns, key=lambda c: (not c.drifted, c.column))
    sections = []
    for c in ordered:
        if c.column == "prediction" and "score" in answered.columns and "prediction" in reference.columns:
            dist, numeric = numeric_distribution(reference["prediction"], answered["score"]), True
        elif c.column in rows.columns and c.column in reference.columns and kinds.get(c.column) in (
                "numeric", "categorical"):
            numeric = kinds[c.column] == "numeric"
            dist = (numeric_distribution if numeric else categorical_distribution)(reference[c.column], rows[c.column])
        else:  # a derived feature: the champion's model computes it, its score is in the table
            continue
        title = f'<h3 class="{"drifted" if c.drifted else ""}">{escape(c.column)}: {escape(c.method)} ' \
                f'{_fmt(c.score)} (threshold {_fmt(c.threshold)})</h3>'
        stats = _table(["", "reference", "window"], [[escape(a), escape(b), escape(w)] for a, b, w in dist.stats])
        sections.append(f"<section>{title}{_svg(dist, numeric)}{stats}</section>")
    summary = _table(["column", "method", "score", "threshold", "sampling noise", "drifted",
                      "missing (reference / window)", "outside the config"],
                     [_score_row(c, quality) for c in ordered])
    name = escape(p.registry.model_name)
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Drift report: {name} version {escape(str(version))}</title><style>{STYLE}</style></head><body>"
            f"<h1>Drift report: {name} version {escape(str(version))}</h1>"
            f"<p><b>{escape(d.status)}</b>: {escape(d.message)}</p>"
            f"<p>{result.rows:,} live rows judged against the {len(reference):,}-row training reference; "
            f"drift share {d.drift_share:.0%} (monitoring.drift_share {p.monitoring.drift_share:.0%}).</p>"
            f"<p>Live accuracy: {escape(result.performance.note)}</p>"
            + _performance(result, p)
            + f"<h2>Per column</h2>{summary}"
            "<h2>Distributions</h2><p class='key'>shares of non-missing values:"
            f"<span style='background:{REFERENCE_COLOUR}'></span>reference"
            f"<span style='border:2px solid {CURRENT_COLOUR}'></span>live window</p>"
            + "".join(sections) + "</body></html>")
