"""The monitor's own HTML report: drawn from the decision's statistics, every row binned, every
text escaped (a category value is whatever a client sent)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from driftline.config import load_params
from driftline.core import demo_data, drift_report, monitoring

REPO = Path(__file__).resolve().parents[3]
HOSTILE = "<script>alert('x')</script>"


def test_numeric_shares_cover_every_value_and_follow_a_shift():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 5000))
    current = pd.Series(np.r_[rng.normal(1.5, 1, 4997), [1e9] * 3, [np.nan] * 5])  # far outliers, missing
    d = drift_report.numeric_distribution(reference, current)
    assert len(d.labels) == drift_report.BINS
    np.testing.assert_allclose([d.reference.sum(), d.current.sum()], 1.0)  # outliers land in the end bins
    assert d.current[-1] >= 3 / 5000  # the outliers are in the last bin, not dropped
    # The range follows the reference and the window's bulk, not the outliers.
    assert float(d.labels[-1]) < 10
    centre = np.arange(drift_report.BINS)
    assert (centre * d.current).sum() > (centre * d.reference).sum() + 3  # the window's mass moved right
    stats = dict((name, (ref, cur)) for name, ref, cur in d.stats)
    assert abs(float(stats["mean"][0])) < 0.1 and float(stats["max"][1]) == 1e9


def test_categories_beyond_the_top_are_one_bar_and_unseen_values_are_counted():
    reference = pd.Series([f"c{i % 20}" for i in range(2000)], dtype="category")
    current = pd.Series(["new"] * 500 + [f"c{i % 20}" for i in range(1500)] + [None] * 3)
    d = drift_report.categorical_distribution(reference, current)
    assert d.labels[0] == "new" and d.labels[-1] == "(other)" and len(d.labels) == drift_report.TOP_CATEGORIES + 1
    np.testing.assert_allclose([d.reference.sum(), d.current.sum()], 1.0)
    assert ("share of values the reference never had", "-", "25.00%") in d.stats


def _assessed(scenario: str):
    p = load_params(REPO / "params.yaml")
    reference = demo_data.generate(3000, seed=1)
    reference["prediction"] = np.random.default_rng(0).beta(2, 8, len(reference))
    rows = demo_data.generate(4000, seed=2, scenario=scenario).drop(columns="defaulted")
    rows = rows.assign(model_version="1", score=np.random.default_rng(1).beta(2, 6, len(rows)))
    rows.loc[rows.index[:3], "region"] = HOSTILE  # a client's value, logged as sent
    return p, reference, rows, monitoring.assess(rows, pd.DataFrame(), reference, p, "1", None, None)


def test_the_report_carries_the_decisions_own_numbers_drifted_first():
    p, reference, rows, result = _assessed("covariate_shift")
    html = drift_report.render(rows, reference, p, result, "1")
    table = re.findall(r"<tr><td>([^<]+)</td><td>([a-z]+)</td><td>([^<]+)</td>", html)
    assert [(c.column, c.method, f"{c.score:.4g}") for c in
            sorted(result.columns, key=lambda c: (not c.drifted, c.column))] == table
    drifted = [c.column for c in result.columns if c.drifted]
    assert drifted and html.count('class="drifted">drifted</span>') == len(drifted)
    assert html.index(f"<h3 class=\"drifted\">{drifted[0]}") < html.index("<h3 class=\"\">")
    assert result.decision.status == "drift" and "<b>drift</b>" in html
    # One distribution per feature and the score, each a well-formed SVG.
    svgs = re.findall(r"<svg.*?</svg>", html)
    assert len(svgs) == len(result.columns)
    for svg in svgs:
        ET.fromstring(svg)


def test_a_clients_value_is_text_in_the_report_never_markup():
    p, reference, rows, result = _assessed("baseline")
    html = drift_report.render(rows, reference, p, result, "1")
    assert HOSTILE not in html and "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # shown, as text
