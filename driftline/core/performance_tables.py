"""The champion's performance as tables of text, for the monitor's Markdown artifact and its HTML
report alike: each metric estimated (with its 95% bounds) beside the realized value and the
holdout's; the score bands with their label coverage; the earlier windows re-judged on their
labels, with the estimation error."""

from __future__ import annotations

from driftline.core.window_performance import Band, Judged


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def metric_rows(judged: Judged | None, holdout: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    header = ["metric", "estimated", "95% bounds", "realized", "95% bounds", "holdout"]
    if judged is None or judged.estimate is None:
        return header, []
    rows = []
    realized = judged.realized.metrics if judged.realized is not None else {}
    for name, v in judged.estimate.metrics.items():
        r = realized.get(name)
        rows.append([name, _num(v.value), f"{_num(v.low)}–{_num(v.high)}", _num(r.value if r else None),
                     f"{_num(r.low)}–{_num(r.high)}" if r else "-", _num(holdout.get(name))])
    return header, rows


def band_rows(bands: list[Band], regression: bool = False) -> tuple[list[str], list[list[str]]]:
    what = "mean |error|" if regression else "accuracy"
    header = ["score band", "rows", "labelled", "coverage", f"estimated {what}", f"realized {what}"]
    return header, [[b.label, f"{b.rows:,}", f"{b.labelled:,}", f"{b.coverage:.0%}", _num(b.estimated),
                     _num(b.realized)] for b in bands]


def past_rows(past: list, metric: str) -> tuple[list[str], list[list[str]]]:
    """`past`: past_windows.Rejudged, newest first."""
    header = ["window", "version", "rows", "labels (coverage)", f"estimated {metric}", f"realized {metric}",
              "estimation error"]
    rows = []
    for r in past:
        real = r.judged.realized
        value = real.metrics.get(metric) if real is not None else None
        rows.append([f"{r.window.first[:19]} – {r.window.last[:19]}", r.window.version, f"{real.rows:,}",
                     f"{real.labelled:,} ({real.coverage:.0%})", _num(r.window.estimated.get(metric)),
                     _num(value.value if value else None), _num(r.errors.get(metric), 4)])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows)]


def performance_markdown(judged: Judged | None, holdout: dict[str, float], past: list, metric: str,
                         regression: bool = False) -> list[str]:
    """The Markdown section: the metrics, the score bands, and the earlier windows re-judged."""
    lines: list[str] = []
    if judged is not None and judged.estimate is not None:
        lines += ["", f"## Performance ({judged.estimate.source})", "", *markdown(*metric_rows(judged, holdout))]
        if judged.left_out:
            lines += ["", f"{judged.left_out:,} rows could not be estimated (no per-class probabilities in the log, "
                      "or a class the model does not have)."]
        lines += ["", "### By score band", "", *markdown(*band_rows(judged.bands, regression))]
    if past:
        lines += ["", "## Earlier windows, on the labels that arrived since", "", *markdown(*past_rows(past, metric))]
        for r in past:
            lines += ["", f"Score bands of {r.window.first[:19]} – {r.window.last[:19]}:", "",
                      *markdown(*band_rows(r.judged.bands, regression))]
    return lines
