"""Configuration: `params.yaml` as strict pydantic models, and settings from the environment.

`params.yaml` says *what* to train and how to judge it; it is read by the Prefect flows
and by `dvc.yaml` alike. Addresses and credentials never live there: they come from
`DRIFTLINE_*` environment variables (`Settings`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Task = Literal["binary", "multiclass", "regression"]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


def metrics_for(task: Task) -> tuple[str, ...]:
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the key and the reason."""


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


# --- data ---------------------------------------------------------------------------


class Feature(Strict):
    name: str
    type: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = Field(
        default=None, description="Allowed values of a categorical feature; others are rejected."
    )
    max_null_rate: float | None = Field(
        default=None, ge=0, le=1, description="Overrides data.max_null_rate for this column."
    )

    @model_validator(mode="after")
    def _check(self) -> Feature:
        if self.type == "numeric" and self.categories is not None:
            raise ValueError("categories are only for categorical features")
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("min/max are only for numeric features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def names_by_type(features: list[Feature]) -> tuple[list[str], list[str]]:
    """The numeric and the categorical feature names, each in config order."""
    return ([f.name for f in features if f.type == "numeric"],
            [f.name for f in features if f.type == "categorical"])


class DataConfig(Strict):
    path: str = Field(description="CSV or Parquet file, relative to the project directory.")
    target: str
    task: Task
    features: list[Feature] = Field(min_length=1)
    time_column: str | None = None
    sensitive_attributes: list[str] = Field(
        default_factory=list, description="Columns used for fairness slices, never as features."
    )
    max_null_rate: float = Field(
        default=0.0, ge=0, le=1, description="Allowed share of missing values per feature."
    )
    positive_class: str | int | None = Field(
        default=None,
        description="Binary tasks: the class whose probability is the score and that precision, "
        "recall, f1, selection rate and roc_auc are about. Defaults to the second class in sorted "
        "order (1 of 0/1). Compared as text, so 1 matches a target stored as '1'.",
    )

    @field_validator("positive_class", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"YAML reads an unquoted yes/no/true/false as the boolean {value}; "
                             "quote the class, e.g. 'yes'")
        return value

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature listed twice: {', '.join(dupes)}")
        for col in [self.target, self.time_column, *self.sensitive_attributes]:
            if col is not None and col in names:
                raise ValueError(f"column {col!r} cannot be both a feature and target/time/sensitive")
        if not self.path.endswith((".csv", ".parquet", ".pq")):
            raise ValueError(f"path must end in .csv or .parquet, got {self.path!r}")
        if self.positive_class is not None and self.task != "binary":
            raise ValueError(f"positive_class is only for binary tasks, not {self.task}")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        extra = [self.time_column] if self.time_column else []
        return [*self.feature_names, self.target, *extra, *self.sensitive_attributes]


# --- validation -----------------------------------------------------------------------


class DistributionCheck(Strict):
    enabled: bool = True
    max_drift_share: float = Field(
        default=0.5, ge=0, le=1,
        description="Reject the data when more than this share of features drifted "
        "from the champion's training reference (Evidently).",
    )
    sample_size: int = Field(default=10_000, ge=100)


class ValidationConfig(Strict):
    min_rows: int = Field(default=1000, ge=1)
    max_duplicate_share: float = Field(default=0.01, ge=0, le=1)
    allow_extra_columns: bool = True
    max_unknown_category_share: float = Field(default=0.0, ge=0, le=1)
    min_class_share: float = Field(
        default=0.001, ge=0, le=0.5, description="Each class must be at least this share."
    )
    distribution: DistributionCheck = DistributionCheck()


# --- split and training ----------------------------------------------------------------


class SplitConfig(Strict):
    method: Literal["hash", "time"] = Field(
        default="hash",
        description="hash: each row's holdout membership is a hash of its contents, so a row stays "
        "on the same side across data versions and training seeds and the champion is never scored "
        "on rows it trained on. time: the latest rows (by data.time_column) are the holdout.",
    )
    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = Field(default=0, description="Salt of the hash split; keep it fixed across runs.")


class HistGradientBoosting(Strict):
    kind: Literal["hist_gradient_boosting"]
    max_iter: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.1, gt=0)
    max_leaf_nodes: int = Field(default=31, ge=2)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0)


class RandomForest(Strict):
    kind: Literal["random_forest"]
    n_estimators: int = Field(default=200, ge=1)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=1, ge=1)
    max_features: float | Literal["sqrt", "log2"] | None = "sqrt"


class LogisticRegression(Strict):
    kind: Literal["logistic_regression"]
    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=1000, ge=1)


class Ridge(Strict):
    kind: Literal["ridge"]
    alpha: float = Field(default=1.0, ge=0)


Estimator = Annotated[
    HistGradientBoosting | RandomForest | LogisticRegression | Ridge, Field(discriminator="kind")
]


class TrainingConfig(Strict):
    seed: int = 42
    estimator: Estimator
    n_jobs: int = Field(default=1, ge=1, description="Worker processes for random_forest.")


# --- evaluation -------------------------------------------------------------------------


class Threshold(Strict):
    min: float | None = None
    max: float | None = None


class FairnessGate(Strict):
    attribute: str
    metric: Literal["accuracy", "recall", "precision", "selection_rate", "mae"] = "recall"
    max_gap: float = Field(ge=0)
    min_group_size: int = Field(default=100, ge=1)


class Invariance(Strict):
    kind: Literal["invariance"]
    name: str
    feature: str
    values: list[str | float] = Field(min_length=1, description="Values to substitute.")
    max_mean_change: float = Field(default=0.02, ge=0, description="Mean |score change|.")


class Directional(Strict):
    kind: Literal["directional"]
    name: str
    feature: str
    shift: float = Field(description="Added to the numeric feature.")
    expect: Literal["increase", "decrease"]
    tolerance: float = Field(default=0.0, ge=0, description="Score moves smaller than this are ignored.")
    max_violation_rate: float = Field(default=0.05, ge=0, le=1)


class Case(Strict):
    record: dict[str, str | float | int | None] = Field(
        description="Feature values; features left out take the training median or mode."
    )
    expect: str | float | int | None = Field(default=None, description="Expected class.")
    expect_min: float | None = Field(default=None, description="Lower bound (score or value).")
    expect_max: float | None = Field(default=None, description="Upper bound (score or value).")


class MinimumFunctionality(Strict):
    kind: Literal["minimum_functionality"]
    name: str
    cases: list[Case] = Field(min_length=1)
    min_pass_rate: float = Field(default=1.0, ge=0, le=1)


Behavioral = Annotated[Invariance | Directional | MinimumFunctionality, Field(discriminator="kind")]


class ComparisonConfig(Strict):
    metric: str | None = Field(default=None, description="Defaults to evaluation.primary_metric.")
    margin: float = Field(
        default=0.01, ge=0,
        description="The challenger may be worse than the champion by at most this much "
        "(lower end of the bootstrap confidence interval of challenger - champion).",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    bootstrap_samples: int = Field(default=500, ge=50)


class EvaluationConfig(Strict):
    primary_metric: str
    decision_threshold: float = Field(default=0.5, gt=0, lt=1)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    fairness: list[FairnessGate] = Field(default_factory=list)
    behavioral: list[Behavioral] = Field(default_factory=list)
    comparison: ComparisonConfig = ComparisonConfig()


class RegistryConfig(Strict):
    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    experiment: str = "driftline"
    reference_rows: int = Field(default=10_000, ge=100, description="Training sample kept as reference.")


class DeploymentConfig(Strict):
    """How `deploy_model` rolls a challenger out and judges it on live traffic."""

    strategy: Literal["canary", "shadow", "blue-green"] = "canary"
    steps: list[float] = Field(default_factory=lambda: [0.1, 0.5, 1.0], min_length=1,
                               description="Challenger traffic weights, in order; the last is before promotion.")
    window_seconds: float = Field(default=60.0, gt=0, description="Analysis window at each step.")
    min_requests: int = Field(default=200, ge=1, description="Challenger requests needed to judge a step "
                              "(the score PSI is biased upwards on small samples: about 9/n with 10 bins).")
    max_wait_seconds: float = Field(default=600.0, gt=0, description="Give up (and roll back) after this.")
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_p95_ratio: float = Field(default=2.0, gt=0, description="Challenger p95 / champion p95.")
    max_score_psi: float = Field(default=0.25, ge=0, description="PSI of challenger vs champion scores.")
    min_agreement: float = Field(default=0.8, ge=0, le=1, description="Shadow: share of equal answers.")
    min_labels: int = Field(default=30, ge=1, description="Labels per variant before accuracy counts.")
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1)
    auto_deploy: bool = Field(default=False, description="A newly registered challenger starts `deploy_model` "
                              "(this strategy) through the event driftline.challenger.registered.")
    smoke_requests: int = Field(default=50, ge=1, description="Blue-green: reference rows sent to the new "
                                "version on the live server before the switch; answers must match offline ones.")


class MonitoringConfig(Strict):
    """How `drift_monitor` reads live traffic and decides that drift is real."""

    window_hours: float = Field(default=24.0, gt=0, description="Window of the prediction log to judge.")
    last_rows: int | None = Field(default=None, ge=1, description="Instead of the whole window: its newest N rows.")
    min_rows: int = Field(default=500, ge=1, description="Fewer rows in the window: too little data, no verdict.")
    drift_share: float = Field(default=0.25, gt=0, le=1,
                               description="Drift when at least this share of the features drifted.")
    drift_columns: list[str] = Field(default_factory=list, description="Columns whose drift alone counts as drift "
                                     "('prediction' is the model's score).")
    cooldown_hours: float = Field(default=24.0, ge=0, description="No drift event within this long of the last "
                                  "retraining or drift event.")
    min_labels: int = Field(default=200, ge=1, description="Labelled rows (feedback) before accuracy is judged.")
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1, description="Performance decline: the 95% upper "
                                     "bound of live accuracy is below holdout accuracy minus this.")
    retrain_on_decline: bool = Field(default=True, description="A performance decline alone counts as drift.")
    report_rows: int = Field(default=10_000, ge=100, description="Rows of the window sampled into the Evidently "
                             "HTML report (the decision always uses the whole window).")


class Params(Strict):
    data: DataConfig
    validation: ValidationConfig = ValidationConfig()
    split: SplitConfig = SplitConfig()
    training: TrainingConfig
    evaluation: EvaluationConfig
    registry: RegistryConfig
    deployment: DeploymentConfig = DeploymentConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    @model_validator(mode="after")
    def _check(self) -> Params:
        # Every problem at once, one line each, each naming its dotted key.
        problems = [*self._check_metrics(), *self._check_estimator(), *self._check_fairness(),
                    *self._check_behavioral()]
        known = {*self.data.feature_names, "prediction"}
        problems += [f"monitoring.drift_columns: {c!r} is not a feature (or 'prediction')"
                     for c in self.monitoring.drift_columns if c not in known]
        if self.split.method == "time" and not self.data.time_column:
            problems.append("split.method: 'time' needs data.time_column")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check_metrics(self) -> list[str]:
        task = self.data.task
        allowed = metrics_for(task)
        problems = []
        metrics = {
            "evaluation.primary_metric": [self.evaluation.primary_metric],
            "evaluation.thresholds": list(self.evaluation.thresholds),
            "evaluation.comparison.metric": [self.evaluation.comparison.metric or allowed[0]],
        }
        for key, names in metrics.items():
            for name in names:
                if name not in allowed:
                    problems.append(f"{key}: {name!r} is not a {task} metric ({', '.join(allowed)})")
        # The paired bootstrap computes AUC from one score per row: binary only.
        if task == "multiclass" and self.comparison_metric == "roc_auc":
            others = ", ".join(m for m in allowed if m != "roc_auc")
            what = ("'roc_auc'" if self.evaluation.comparison.metric else
                    "not set, so it defaults to evaluation.primary_metric 'roc_auc', which")
            problems.append(f"evaluation.comparison.metric: {what} is supported for binary tasks only "
                            f"(the champion comparison bootstraps a binary AUC); set "
                            f"evaluation.comparison.metric to one of {others}")
        return problems

    def _check_estimator(self) -> list[str]:
        task, kind = self.data.task, self.training.estimator.kind
        if task == "regression" and kind == "logistic_regression":
            return ["training.estimator.kind: logistic_regression cannot do regression; use ridge"]
        if task != "regression" and kind == "ridge":
            return [f"training.estimator.kind: ridge cannot do {task}; use logistic_regression"]
        return []

    def _check_fairness(self) -> list[str]:
        task = self.data.task
        # selection_rate is undefined beyond binary (a NaN gap would pass); regression slices are MAE.
        fair_metrics = {"binary": ("accuracy", "recall", "precision", "selection_rate"),
                        "multiclass": ("accuracy", "recall", "precision"), "regression": ("mae",)}[task]
        problems = []
        for gate in self.evaluation.fairness:
            if gate.attribute not in self.data.sensitive_attributes:
                problems.append(f"evaluation.fairness.attribute: {gate.attribute!r} is not in "
                                "data.sensitive_attributes")
            if gate.metric not in fair_metrics:
                problems.append(f"evaluation.fairness.metric: {gate.metric!r} is not a {task} slice metric "
                                f"({', '.join(fair_metrics)})")
        return problems

    def _check_behavioral(self) -> list[str]:
        names = set(self.data.feature_names)
        numeric = {f.name for f in self.data.features if f.type == "numeric"}
        problems = []
        for test in self.evaluation.behavioral:
            key = f"evaluation.behavioral[{test.name}]"
            features = [test.feature] if hasattr(test, "feature") else [
                name for case in test.cases for name in case.record
            ]
            unknown = sorted(set(features) - names)
            if unknown:
                problems.append(f"{key}: unknown feature {', '.join(unknown)}")
                continue
            if test.kind == "directional" and test.feature not in numeric:
                problems.append(f"{key}: directional tests shift a numeric feature; {test.feature} is categorical")
            elif test.kind == "invariance":
                problems += _value_types(f"{key}.values", test.feature, test.values, test.feature in numeric)
            elif test.kind == "minimum_functionality":
                for i, case in enumerate(test.cases):
                    for name, value in case.record.items():
                        if value is not None:  # None: the feature is missing in this case
                            problems += _value_types(f"{key}.cases.{i}.record", name, [value], name in numeric)
        return problems

    @property
    def comparison_metric(self) -> str:
        return self.evaluation.comparison.metric or self.evaluation.primary_metric

    def digest(self) -> str:
        """Stable hash of the whole parameter set (tags, cache keys)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _value_types(key: str, feature: str, values: list, numeric: bool) -> list[str]:
    """A number for a numeric feature, text for a categorical one (YAML reads `12` as a number)."""
    if numeric:
        wrong = [v for v in values if isinstance(v, str)]
        return [f"{key}: {feature} is numeric, so its values must be numbers, not {', '.join(map(repr, wrong))}"] \
            if wrong else []
    wrong = [v for v in values if not isinstance(v, str)]
    return [f"{key}: {feature} is categorical, so its values must be strings, not {', '.join(map(repr, wrong))} "
            f"(quote them in YAML)"] if wrong else []


# --- loading ------------------------------------------------------------------------------


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        # Discriminated unions put the chosen tag into the location; it is noise to a user.
        loc = ".".join(str(p) for p in e["loc"] if p not in {"hist_gradient_boosting", "random_forest",
                                                                "logistic_regression", "ridge",
                                                                "invariance", "directional",
                                                                "minimum_functionality"})
        msg = e["msg"].removeprefix("Value error, ")
        if not loc:
            # Whole-config checks name their own dotted keys, one problem a line.
            lines += msg.splitlines()
        else:
            lines.append(f"{loc}: {msg}")
    return "\n".join(lines)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `KEY=VALUE` overrides (dotted keys, YAML values) to a raw params dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.seed=7")
        parts = key.split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])} is not a mapping")
        node[parts[-1]] = yaml.safe_load(value)
    return raw


def parse_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source} is invalid:\n{_format_errors(err)}") from None


def load_params(path: str | Path, overrides: list[str] | None = None) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if isinstance(raw, dict):
        raw = apply_overrides(raw, list(overrides or []))
    return parse_params(raw, str(path))


def params_schema() -> dict[str, Any]:
    return Params.model_json_schema()


# --- environment ----------------------------------------------------------------------------


class Settings(BaseSettings):
    """Where things live. Every field reads `DRIFTLINE_<NAME>` from the environment."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    project_dir: Path = Field(default_factory=Path.cwd)
    state_dir: Path | None = Field(default=None, description="Defaults to <project_dir>/.driftline")
    tracking_uri: str | None = Field(default=None, description="Defaults to a SQLite file in state_dir")
    artifact_location: str | None = Field(default=None, description="Defaults to state_dir/mlartifacts")
    dvc_remote_dir: Path | None = Field(default=None, description="Defaults to state_dir/dvc-remote")
    serve_url: str = Field(default="http://127.0.0.1:8080", description="The model server that blue-green "
                           "deployments smoke-test (its DRIFTLINE_SERVE_TOKEN is used when set).")
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    prefect_ui_url: str = "http://127.0.0.1:4200"

    @classmethod
    def for_project(cls, project_dir: str | Path | None) -> Settings:
        """The settings, with the project directory a flow was given instead of the environment's."""
        return cls(project_dir=Path(project_dir)) if project_dir else cls()

    @property
    def root(self) -> Path:
        return self.project_dir.resolve()

    @property
    def state(self) -> Path:
        return (self.state_dir or self.root / ".driftline").resolve()

    @property
    def mlflow_uri(self) -> str:
        # MLflow wants four slashes for an absolute SQLite path.
        return self.tracking_uri or f"sqlite:///{self.state / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> str:
        return self.artifact_location or (self.state / "mlartifacts").as_uri()

    @property
    def remote_dir(self) -> Path:
        return (self.dvc_remote_dir or self.state / "dvc-remote").resolve()


class ServeSettings(BaseSettings):
    """The model server. Every field reads `DRIFTLINE_SERVE_<NAME>` from the environment."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_SERVE_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    poll_seconds: float = Field(default=3.0, gt=0, description="How often the registry is read.")
    max_batch: int = Field(default=64, ge=1, description="Rows per batched predict call.")
    max_wait_ms: float = Field(default=5.0, ge=0, description="How long a request waits for company.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_records: int = Field(default=10_000, ge=1, description="Records per request (or labels per /feedback).")
    body_timeout_seconds: float = Field(default=10.0, gt=0, description="A body not received whole within this "
                                        "is answered 408 (uvicorn has no body read timeout of its own).")
    max_pending_requests: int = Field(default=1024, ge=1, description="Requests waiting for a predict call; "
                                      "beyond it 503 with Retry-After.")
    max_log_backlog_rows: int = Field(default=100_000, ge=1, description="Log rows not yet written; beyond it "
                                      "503 with Retry-After rather than growing memory.")
    token: str | None = Field(default=None, repr=False, description="Bearer token for /predict and /feedback.")
    feedback_token: str | None = Field(default=None, repr=False, description="Bearer token for /feedback "
                                       "(labels usually come from another system); defaults to `token`.")
    request_id_key: str | None = Field(default=None, repr=False, description="HMAC key of the request ids the "
                                       "server issues; replicas that share it accept each other's labels. "
                                       "Defaults to a random key kept (0600) in state_dir.")
    feedback_max_age_hours: float = Field(default=168.0, gt=0, description="Labels are accepted for request ids "
                                          "issued at most this long ago.")
    log_dir: str | Path | None = Field(default=None, description="Prediction and feedback logs: a directory or "
                                "s3://BUCKET/PREFIX; defaults to state_dir")
    model_threads: int = Field(default=1, ge=1, description="OpenMP threads per worker for the model.")
    log_predictions: bool = Field(default=True, description="Write the prediction log (the monitor needs it).")
    keep_previous: bool = Field(default=True, description="Keep @previous loaded: a rollback is then a swap.")
    unknown_category: Literal["allow", "reject"] = Field(
        default="allow", description="A category the model never saw: 'allow' predicts with it as missing (and "
        "the drift monitor sees it in the log); 'reject' answers 422 naming the field.")
    unknown_fields: Literal["reject", "drop"] = Field(
        default="reject", description="A record key that is no model input: 'reject' answers 422 naming it; "
        "'drop' ignores it. Never logged either way.")
    out_of_range: Literal["allow", "reject"] = Field(
        default="allow", description="A number outside its data.features min/max: 'allow' predicts and names "
        "the field in the log row's `out_of_range`; 'reject' answers 422 naming the field.")

    @field_validator("token", "feedback_token", "request_id_key")
    @classmethod
    def _not_blank(cls, value: str | None, info) -> str | None:
        # An empty DRIFTLINE_SERVE_TOKEN is a mistake (a missing secret), never "auth off": unset it instead.
        if value is not None and not value.strip():
            raise ValueError(f"DRIFTLINE_SERVE_{info.field_name.upper()} is set but empty; unset it or give a value")
        if info.field_name == "request_id_key" and value is not None and len(value) < 16:
            raise ValueError("DRIFTLINE_SERVE_REQUEST_ID_KEY must have at least 16 characters")
        return value

    def logs(self, settings: Settings) -> str | Path:
        """Where the prediction and feedback logs live: the server writes there, the flows read."""
        return self.log_dir or settings.state
