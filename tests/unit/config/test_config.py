"""params.yaml as strict pydantic models: what loads, what is rejected, and how the error reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from driftline.config import (
    ConfigError,
    HistGradientBoosting,
    Params,
    Settings,
    apply_overrides,
    load_params,
    params_schema,
    parse_params,
)

PARAMS_FILE = Path(__file__).resolve().parents[3] / "params.yaml"
CONFIGS = Path(__file__).parent / "configs"
INVALID = sorted((CONFIGS / "invalid").glob("*.yaml"))


def _header(path: Path, field: str) -> str:
    """The value of a `# field: ...` comment at the top of a config example."""
    for line in path.read_text().splitlines():
        if line.startswith(f"# {field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path.name} has no '# {field}:' header")


def _error(*overrides: str, raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(apply_overrides(raw, list(overrides)))
    return str(info.value)


def _names_key(message: str, key: str, reason: str) -> bool:
    """True if one line of the error names `key` (as `key:` or `key[...]`) and gives `reason`."""
    pattern = re.compile(rf"(^|\s){re.escape(key)}[:\[]")
    return any(pattern.search(line) and reason in line for line in message.splitlines())


# --- the real params.yaml and the valid example ---------------------------------------------


def test_params_yaml_loads(params):
    assert params.data.task == "binary"
    assert params.data.target == "defaulted"
    assert isinstance(params.training.estimator, HistGradientBoosting)
    assert params.training.estimator.learning_rate == 0.05
    assert params.validation.allow_extra_columns is False
    assert params.comparison_metric == "roc_auc"
    assert {b.kind for b in params.evaluation.behavioral} == {"invariance", "directional", "minimum_functionality"}


def test_minimal_valid_config_loads_and_takes_defaults():
    p = load_params(CONFIGS / "valid" / "minimal.yaml")
    assert p.data.feature_names == ["tenure", "plan"]
    assert p.split.method == "hash"
    assert p.training.seed == 42
    assert p.validation.min_rows == 1000
    # Without evaluation.comparison.metric the comparison uses the primary metric.
    assert p.comparison_metric == "roc_auc"


def test_params_are_frozen(params):
    with pytest.raises(ValueError, match="frozen"):
        params.training.seed = 1


# --- invalid examples, each failing with a message that names its key ----------------------------


def test_there_are_invalid_examples():
    assert len(INVALID) >= 10


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_is_rejected_naming_its_key(path):
    key, reason = _header(path, "expect"), _header(path, "reason")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert _names_key(message, key, reason), f"expected '{key}: ...{reason}...' in:\n{message}"


# --- the same rules on variants of the real params.yaml ---------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "reason"),
    [
        (["training.estimatr={kind: ridge}"], "training.estimatr", "Extra inputs are not permitted"),
        (["training.estimator.max_itr=50"], "training.estimator.max_itr", "Extra inputs are not permitted"),
        (["data.features.0.maxx=3"], "data.features.0.maxx", "Extra inputs are not permitted"),
        (["training.seed='x'"], "training.seed", "valid integer"),
        (["training.seed=1.5"], "training.seed", "valid integer"),
        (["training.estimator.max_iter=0"], "training.estimator.max_iter", "greater than or equal to 1"),
        (["evaluation.thresholds.rmse={max: 0.3}"], "evaluation.thresholds", "'rmse' is not a binary metric"),
        (["evaluation.primary_metric=mae"], "evaluation.primary_metric", "'mae' is not a binary metric"),
        (["evaluation.comparison.metric=r2"], "evaluation.comparison.metric", "'r2' is not a binary metric"),
        (["training.estimator={kind: ridge}"], "training.estimator.kind", "ridge cannot do binary"),
        (["split.method=time", "data.time_column=null"], "split.method", "needs data.time_column"),
        (["evaluation.fairness.0.attribute=region"], "evaluation.fairness.attribute",
         "'region' is not in data.sensitive_attributes"),
        (["evaluation.behavioral.1.feature=debt_ratio"], "evaluation.behavioral", "unknown feature debt_ratio"),
        (["evaluation.behavioral.2.cases.0.record.fico=700"], "evaluation.behavioral", "unknown feature fico"),
        (["evaluation.behavioral.1.feature=region"], "evaluation.behavioral",
         "directional tests shift a numeric feature; region is categorical"),
        (["data.task=multiclass", "evaluation.fairness.0.metric=selection_rate"], "evaluation.fairness.metric",
         "'selection_rate' is not a multiclass slice metric"),
        (["data.path=data/loans.xlsx"], "data", "path must end in .csv or .parquet"),
        (["data.task=multiclass"], "evaluation.comparison.metric",
         "'roc_auc' is supported for binary tasks only"),
        (["evaluation.comparison.method=delong", "evaluation.comparison.metric=accuracy"],
         "evaluation.comparison.method", "'delong' is an interval for a binary task's roc_auc"),
        (["data.task=multiclass", "evaluation.comparison.metric=null"], "evaluation.comparison.metric",
         "defaults to evaluation.primary_metric 'roc_auc', which is supported for binary tasks only"),
        (["evaluation.behavioral.0.values=[web, 2]"], "evaluation.behavioral",
         "application_channel is categorical, so its values must be strings, not 2.0"),
        (["evaluation.behavioral.0.feature=credit_score", "evaluation.behavioral.0.values=[700, '750']"],
         "evaluation.behavioral", "credit_score is numeric, so its values must be numbers, not '750'"),
        (["evaluation.behavioral.2.cases.0.record.credit_score='820'"], "evaluation.behavioral",
         "credit_score is numeric, so its values must be numbers, not '820'"),
        (["evaluation.behavioral.2.cases.1.record.region=3"], "evaluation.behavioral",
         "region is categorical, so its values must be strings, not 3"),
        (["data.positive_class=yes"], "data.positive_class", "quote the class"),
        (["data.task=regression", "data.positive_class=1"], "data", "positive_class is only for binary tasks"),
        (["registry.model_name=loan default"], "registry.model_name", "should match pattern"),
    ],
)
def test_variant_of_params_yaml_is_rejected_naming_its_key(raw_params, overrides, key, reason):
    message = _error(*overrides, raw=raw_params)
    assert _names_key(message, key, reason), f"expected '{key}: ...{reason}...' in:\n{message}"


def test_multiclass_may_rank_by_roc_auc_but_compare_by_another_metric(make_params):
    p = make_params("data.task=multiclass", "evaluation.comparison.metric=f1", "data.derived=[]")
    assert (p.evaluation.primary_metric, p.comparison_metric) == ("roc_auc", "f1")
    assert make_params("evaluation.comparison.metric=null").comparison_metric == "roc_auc"  # binary: fine


def test_behavioral_values_of_the_right_type_load(make_params):
    p = make_params("evaluation.behavioral.0.feature=credit_score", "evaluation.behavioral.0.values=[700, 750.5]",
                    "evaluation.behavioral.2.cases.0.record={credit_score: 820, region: north, loan_purpose: null}")
    assert p.evaluation.behavioral[0].values == [700.0, 750.5]
    assert p.evaluation.behavioral[2].cases[0].record == {"credit_score": 820, "region": "north",
                                                          "loan_purpose": None}


def test_the_record_error_names_the_case(raw_params):
    message = _error("evaluation.behavioral.2.cases.1.record.region=3", raw=raw_params)
    assert "evaluation.behavioral[textbook applicants].cases.1.record: region is categorical" in message


@pytest.mark.parametrize("value", ["1", "'1'", "'yes'", "null"])
def test_positive_class_is_text_or_an_integer(make_params, value):
    p = make_params(f"data.positive_class={value}")
    assert p.data.positive_class == {"1": 1, "'1'": "1", "'yes'": "yes", "null": None}[value]


def test_whole_config_problems_are_reported_together(raw_params):
    message = _error("data.task=multiclass", "evaluation.fairness.0.metric=selection_rate",
                     "evaluation.behavioral.0.values=[1]", raw=raw_params)
    for key in ("evaluation.comparison.metric", "evaluation.fairness.metric", "evaluation.behavioral"):
        assert _names_key(message, key, ""), f"{key} missing from:\n{message}"
    assert "(top level)" not in message


def test_logistic_regression_cannot_do_regression(raw_params):
    raw_params["evaluation"] = {"primary_metric": "rmse"}
    message = _error("data.task=regression", "training.estimator={kind: logistic_regression}", raw=raw_params)
    assert _names_key(message, "training.estimator.kind", "logistic_regression cannot do regression")


def test_regression_slices_are_mean_absolute_error(regression_raw, make_params):
    # The default slice metric, recall, means nothing for a regression model.
    del regression_raw["evaluation"]["fairness"][0]["metric"]
    reason = "evaluation.fairness.metric: 'recall' is not a regression slice metric"
    with pytest.raises(ConfigError, match=re.escape(reason)):
        make_params(raw=regression_raw)
    assert make_params("evaluation.fairness.0.metric=mae", raw=regression_raw).evaluation.fairness[0].metric == "mae"


def test_the_same_variant_with_ridge_is_valid(raw_params):
    raw_params["evaluation"] = {"primary_metric": "rmse"}
    p = parse_params(apply_overrides(raw_params, ["data.task=regression", "training.estimator={kind: ridge}"]))
    assert p.training.estimator.kind == "ridge"
    assert p.comparison_metric == "rmse"


def test_time_split_with_time_column_is_valid(make_params):
    assert make_params("split.method=time").split.method == "time"


def test_every_problem_is_reported_at_once(raw_params):
    message = _error("training.seed=x", "split.test_size=1.5", raw=raw_params)
    assert "training.seed:" in message
    assert "split.test_size:" in message


@pytest.mark.parametrize("raw", [None, [1, 2], "text"])
def test_a_non_mapping_is_rejected(raw):
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_params(raw, "params.yaml")


def test_load_params_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(broken)


def test_load_params_applies_overrides():
    p = load_params(PARAMS_FILE, ["training.seed=7", "training.estimator.learning_rate=0.2"])
    assert p.training.seed == 7
    assert p.training.estimator.learning_rate == 0.2


# --- apply_overrides --------------------------------------------------------------------------------


def test_apply_overrides_sets_nested_keys_and_parses_yaml_values(raw_params):
    out = apply_overrides(raw_params, [
        "training.estimator.learning_rate=0.2",
        "validation.distribution.enabled=false",
        "data.sensitive_attributes=[gender, region]",
        "evaluation.thresholds.f1={min: 0.4}",
        "evaluation.fairness.0.max_gap=0.25",
        "registry.model_name=loan-default-v2",
        "data.time_column=null",
    ])
    assert out is raw_params
    assert out["training"]["estimator"]["learning_rate"] == 0.2
    assert out["training"]["estimator"]["kind"] == "hist_gradient_boosting"  # siblings kept
    assert out["validation"]["distribution"]["enabled"] is False
    assert out["data"]["sensitive_attributes"] == ["gender", "region"]
    assert out["evaluation"]["thresholds"]["f1"] == {"min": 0.4}
    assert out["evaluation"]["thresholds"]["roc_auc"] == {"min": 0.8}
    assert out["evaluation"]["fairness"][0]["max_gap"] == 0.25
    assert out["registry"]["model_name"] == "loan-default-v2"
    assert out["data"]["time_column"] is None


def test_apply_overrides_creates_missing_sections():
    assert apply_overrides({}, ["validation.distribution.enabled=false"]) == {
        "validation": {"distribution": {"enabled": False}}}


def test_apply_overrides_splits_on_the_first_equals_sign():
    assert apply_overrides({}, ["registry.experiment=a=b"]) == {"registry": {"experiment": "a=b"}}


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("training.seed", "expected KEY=VALUE"),
        ("=7", "expected KEY=VALUE"),
        ("", "expected KEY=VALUE"),
        ("training.seed.value=1", "training.seed is not a mapping"),
        ("evaluation.fairness.3.max_gap=1", "evaluation.fairness.3 is not a mapping"),
        ("data.features.name=x", "data.features is not a mapping"),
    ],
)
def test_apply_overrides_rejects_malformed_items(raw_params, item, reason):
    with pytest.raises(ConfigError, match=re.escape(reason)) as info:
        apply_overrides(raw_params, [item])
    assert str(info.value).startswith("--set ")


# --- digest and schema ---------------------------------------------------------------------------------


def test_digest_is_stable(params, raw_params):
    reloaded = load_params(PARAMS_FILE)
    assert params.digest() == reloaded.digest()
    assert re.fullmatch(r"[0-9a-f]{16}", params.digest())
    # Key order in the file does not matter, at the top level or inside a mapping of the user's.
    reordered = {k: raw_params[k] for k in reversed(list(raw_params))}
    thresholds = reordered["evaluation"]["thresholds"]
    reordered["evaluation"]["thresholds"] = {k: thresholds[k] for k in reversed(list(thresholds))}
    assert list(parse_params(reordered).evaluation.thresholds) != list(params.evaluation.thresholds)
    assert parse_params(reordered).digest() == params.digest()


@pytest.mark.parametrize(
    "override",
    ["training.seed=43", "training.estimator.learning_rate=0.06", "evaluation.comparison.margin=0.02",
     "data.features.0.max=99", "split.method=time"],
)
def test_digest_changes_with_any_param(params, make_params, override):
    assert make_params(override).digest() != params.digest()


def test_digest_counts_defaults_like_explicit_values(make_params, params):
    # n_jobs is not in params.yaml; writing its default out must not change the hash.
    assert make_params("training.n_jobs=null").digest() == params.digest()


def test_params_schema_is_json_and_describes_the_estimator():
    schema = params_schema()
    text = json.dumps(schema)
    assert "estimator" in text
    assert set(schema["properties"]) == set(Params.model_fields)
    for kind in ("hist_gradient_boosting", "random_forest", "logistic_regression", "ridge"):
        assert kind in text
    assert json.loads(text) == schema


# --- settings from the environment -----------------------------------------------------------------------


def test_settings_default_to_files_under_the_project(tmp_path, monkeypatch):
    for name in ("PROJECT_DIR", "STATE_DIR", "TRACKING_URI", "ARTIFACT_LOCATION", "DVC_REMOTE_DIR"):
        monkeypatch.delenv(f"DRIFTLINE_{name}", raising=False)
    s = Settings(project_dir=tmp_path)
    state = tmp_path.resolve() / ".driftline"
    assert s.state == state
    assert s.mlflow_uri == f"sqlite:///{state / 'mlflow.db'}"
    assert s.mlflow_artifacts == (state / "mlartifacts").as_uri()
    assert s.remote_dir == state / "dvc-remote"


def test_settings_read_driftline_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_TRACKING_URI", "http://mlflow.internal:5000")
    s = Settings()
    assert s.root == tmp_path.resolve()
    assert s.mlflow_uri == "http://mlflow.internal:5000"


def test_example_configs_are_yaml_mappings():
    # Guards the parametrized test above against a file that fails for the wrong reason.
    for path in INVALID:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path.name
