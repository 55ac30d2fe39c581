"""Data validation with the distribution check against the champion's reference (Evidently)."""

from __future__ import annotations

from driftline.adapters import evidently_drift

DISTRIBUTION = "distribution: drift against champion reference"


def test_without_a_reference_only_schema_and_quality_are_checked(params, loans):
    report, html = evidently_drift.validate_with_drift(loans, params, None, None)
    assert report.passed and html == ""
    assert DISTRIBUTION not in {c.name for c in report.checks}


def test_the_same_data_as_the_reference_passes_the_distribution_check_with_its_report(params, loans):
    report, html = evidently_drift.validate_with_drift(loans, params, loans, "4")
    check = next(c for c in report.checks if c.name == DISTRIBUTION)
    assert check.passed and "from model version 4's training data" in check.detail and "<html" in html.lower()


def test_a_shifted_table_fails_unless_the_run_retrains_because_of_drift(make_params, loans):
    from driftline.core import demo_data

    strict = make_params("validation.distribution.max_drift_share=0.0")
    shifted = demo_data.generate(3000, seed=3, scenario="covariate_shift")
    report, _ = evidently_drift.validate_with_drift(shifted, strict, loans, "4")
    check = next(c for c in report.checks if c.name == DISTRIBUTION)
    assert not report.passed and not check.passed and "(at most 0%)" in check.detail
    expected, _ = evidently_drift.validate_with_drift(shifted, strict, loans, "4", drift_expected=True)
    assert next(c for c in expected.checks if c.name == DISTRIBUTION).passed


def test_monitoring_report_evidently_renders_evidentlys_presets_on_a_sample(make_params, loans):
    from driftline import services
    from driftline.core import demo_data

    p = make_params("monitoring.report=evidently", "monitoring.report_rows=500")
    live = demo_data.generate(2000, seed=3, scenario="covariate_shift").drop(columns="defaulted")
    html = services.EvidentlyReports().render(live, loans, p, None, "4")
    # Evidently's own page: its drift preset's table and its summary preset, for the sampled rows.
    assert "root_metric_" in html and "Drifted Columns" in html and "Drift is detected for " in html
    assert "annual_income" in html
