"""The serving plan (core.plan) answers bit for bit as the registered Pipeline, for every estimator
kind with a fast path, on the holdout, single rows, shuffled batches and generated records; a kind
without one, or a model whose plan differs, is served by its Pipeline and says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.config import load_params
from driftline.core import demo_data, estimators, frames, plan, plan_check, training
from driftline.core.features import DerivedFeatures

from .test_estimators import FACTORY, KINDS

DERIVED = ("data.derived=[{name: loan_to_income, kind: ratio, numerator: loan_amount, denominator: annual_income},"
           "{name: log_income, kind: log1p, column: annual_income},"
           "{name: purpose_rate, kind: target_encoding, column: loan_purpose},"
           "{name: gap, kind: difference, left: credit_score, right: age},"
           "{name: capped, kind: clip, column: debt_to_income, quantiles: [0.05, 0.95]},"
           "{name: bands, kind: quantile_bins, column: credit_score, bins: 5},"
           "{name: rate_term, kind: interaction, columns: [interest_rate, term_months]},"
           "{name: region_share, kind: frequency, column: region}]")
FAST = ["hist_gradient_boosting", "xgboost", "lightgbm"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import yaml

    from tests.unit.conftest import PARAMS_FILE

    root = tmp_path_factory.mktemp("plan")
    (root / "models").mkdir()
    (root / "models" / "__init__.py").write_text("")
    (root / "models" / "credit.py").write_text(FACTORY)
    (root / "params.yaml").write_text(yaml.safe_dump(yaml.safe_load(PARAMS_FILE.read_text())))
    return root


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    df = demo_data.generate(3000)
    df.loc[df.sample(40, random_state=1).index, "loan_purpose"] = None  # missing categories in training too
    return df


@pytest.fixture(scope="module")
def fitted(project, table):
    """kind -> (model, holdout features, the server's column kinds)."""
    out = {}
    for kind in [*FAST, "random_forest", "logistic_regression"]:
        p = load_params(project / "params.yaml", [f"training.estimator={KINDS[kind][0]}", DERIVED])
        parts = training.split(table, p)
        x = frames.features(parts.holdout, p.data)
        out[kind] = (training.train(parts.train, p), x, columns_of(x))
    return out


def columns_of(x: pd.DataFrame) -> dict[str, str]:
    return {c: "double" if x[c].dtype.kind == "f" else "string" for c in x.columns}


def frame(columns):
    """Records as the server's Loaded.frame builds them (float64 columns, object text)."""
    def build(records):
        from driftline.serving.loader import Loaded

        return Loaded("1", None, columns, pd.DataFrame(), True).frame(records)
    return build


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.ascontiguousarray(a).tobytes() == \
        np.ascontiguousarray(b).tobytes()


@pytest.mark.parametrize("kind", FAST)
def test_the_plan_equals_the_pipeline_bit_for_bit_on_the_holdout_single_rows_and_shuffled_batches(fitted, kind):
    model, x, columns = fitted[kind]
    compiled = plan.compile_model(model, columns, classification=True)
    assert compiled.kind == kind and compiled.tables and compiled.derived  # lookups and NumPy expressions
    records = plan_check.records_of(x, columns)
    expected = model.predict_proba(x)
    assert same(compiled.predict_records(records), expected)
    assert same(compiled.predict_columns(x), expected)  # the comparison's way in: a frame's columns
    order = np.random.default_rng(0).permutation(len(records))
    assert same(compiled.predict_records([records[i] for i in order]), expected[order])
    for i in range(0, 40, 7):
        assert same(compiled.predict_records([records[i]]), model.predict_proba(x.iloc[[i]]))


@pytest.mark.parametrize("kind", FAST)
def test_the_plan_equals_the_pipeline_on_the_edge_rows(fitted, kind):
    model, x, columns = fitted[kind]
    compiled = plan.compile_model(model, columns, classification=True)
    base = plan_check.records_of(x.head(1), columns)[0]
    edges = plan_check.edge_records(base, columns, compiled)
    assert any(r["annual_income"] == 0.0 for r in edges) and any(r["loan_purpose"] is None for r in edges)
    with np.errstate(all="ignore"):
        assert same(compiled.predict_records(edges), model.predict_proba(frame(columns)(edges)))


@pytest.mark.parametrize("encoder", ["CategoryCodes", "OrdinalEncoder (models fitted before it)"])
def test_nan_for_a_missing_category_is_read_as_the_pipeline_reads_it_in_small_and_large_batches(
        project, table, monkeypatch, encoder):
    # A record read from a pandas frame (the model's input example) holds NaN where JSON holds null.
    if encoder.startswith("OrdinalEncoder"):
        from sklearn.preprocessing import OrdinalEncoder

        monkeypatch.setattr(training, "CategoryCodes", OrdinalEncoder)
    p = load_params(project / "params.yaml", [f"training.estimator={KINDS['hist_gradient_boosting'][0]}", DERIVED])
    parts = training.split(table, p)
    model = training.train(parts.train, p)
    x = frames.features(parts.holdout, p.data)
    columns = columns_of(x)
    compiled = plan.compile_model(model, columns, classification=True)
    records = [{**r, "loan_purpose": float("nan") if i % 3 == 0 else r["loan_purpose"]}
               for i, r in enumerate(plan_check.records_of(x, columns) * 2)]
    assert len(records) >= plan.SMALL
    for batch in (records[:12], records):
        assert same(compiled.predict_records(batch), model.predict_proba(frame(columns)(batch)))
    if encoder == "CategoryCodes":  # NaN and None are one missing category
        nones = [{**r, "loan_purpose": None if r["loan_purpose"] != r["loan_purpose"] else r["loan_purpose"]}
                 for r in records]
        assert same(compiled.predict_records(records), compiled.predict_records(nones))


def _record(columns, known):
    number = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))
    text = {c: st.one_of(st.none(), st.sampled_from(sorted(known.get(c, ["x"]))), st.text(max_size=4))
            for c, t in columns.items() if t == "string"}
    return st.fixed_dictionaries({c: number if t == "double" else text[c] for c, t in columns.items()})


@pytest.mark.parametrize("kind", FAST)
def test_the_plan_equals_the_pipeline_on_generated_records(fitted, kind):
    model, _x, columns = fitted[kind]
    compiled = plan.compile_model(model, columns, classification=True)
    known = training.known_categories(model)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_record(columns, known), min_size=1, max_size=12))
    def check(records):
        with np.errstate(all="ignore"):
            assert same(compiled.predict_records(records), model.predict_proba(frame(columns)(records)))

    check()


@pytest.mark.parametrize("case", ["regression_case", "multiclass_case"])
def test_a_regressor_and_a_multiclass_model_are_compiled_too(project, request, case):
    p, df = request.getfixturevalue(case)
    classification = case == "multiclass_case"
    p = p.model_copy(update={"training": load_params(project / "params.yaml", [
        "training.estimator={kind: hist_gradient_boosting, max_iter: 30}"]).training})
    model = training.train(training.split(df, p).train, p)
    x = frames.features(df.head(300), p.data)
    compiled = plan.compile_model(model, columns_of(x), classification)
    expected = model.predict_proba(x) if classification else model.predict(x)
    assert same(compiled.predict_columns(x), expected)
    assert same(compiled.predict_records(plan_check.records_of(x, columns_of(x))), expected)


@pytest.mark.parametrize("kind", ["random_forest", "logistic_regression"])
def test_a_kind_without_a_fast_path_is_served_by_its_pipeline_and_says_so(fitted, kind):
    model, x, columns = fitted[kind]
    assert estimators.KINDS[kind].fast is None
    verdict = plan_check.compile_checked(model, columns, True, frame(columns),
                                         [("reference", plan_check.records_of(x, columns))])
    assert verdict.plan is None and f"{kind} has no fast path" in verdict.reason


class _Nudged(DerivedFeatures):
    """A derive step whose ratio is not what the plan computes from the same spec (a ratio one ulp
    off changes no tree's answer here: the trees compare, and the answers are what is checked)."""

    def _value(self, s, x):
        value = super()._value(s, x)
        return value * 3 if s["kind"] == "ratio" else value


def test_a_model_whose_plan_differs_is_served_by_its_pipeline_and_says_where(fitted):
    import copy

    model, x, columns = fitted["hist_gradient_boosting"]
    nudged = copy.deepcopy(model)
    nudged.estimator_.steps[0][1].__class__ = _Nudged
    records = plan_check.records_of(x, columns)
    honest = plan_check.compile_checked(model, columns, True, frame(columns), [("reference", records)])
    assert honest.plan is not None and honest.reason == "" and honest.rows > len(records)
    verdict = plan_check.compile_checked(nudged, columns, True, frame(columns), [("reference", records)])
    assert verdict.plan is None
    assert verdict.reason.startswith("reference: ") and "rows differ from the Pipeline" in verdict.reason


def test_derived_kinds_the_plan_cannot_compute_leave_the_pipeline_serving(project, table):
    p = load_params(project / "params.yaml", ["training.estimator={kind: hist_gradient_boosting, max_iter: 10}",
                                              "data.derived=[{name: when, kind: days_since, column: application_date,"
                                              " date: '2026-01-01'}]", "data.features=" + _with_time()])
    model = training.train(training.split(table, p).train, p)
    x = frames.features(table.head(50), p.data)
    found, reason = plan.plan_or_reason(model, columns_of(x), True)
    assert found is None and "'when' (days_since)" in reason


def _with_time() -> str:
    import yaml

    from tests.unit.conftest import PARAMS_FILE

    features = yaml.safe_load(PARAMS_FILE.read_text())["data"]["features"]
    return yaml.safe_dump([*features, {"name": "application_date", "type": "datetime"}], default_flow_style=True,
                          width=10_000).strip()
