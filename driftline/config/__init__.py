"""Configuration: `params.yaml` as strict pydantic models, and settings from the environment.

`params.yaml` says *what* to train and how to judge it; it is read by the Prefect flows
and by `dvc.yaml` alike. Addresses and credentials never live there: they come from
`DRIFTLINE_*` environment variables (`Settings`).

The sections live in `sections`, `estimators`, `evaluation` and `rollout`, the checks across them in
`checks`, reading and `--set` overrides in `load`, the environment in `settings`; every
name is re-exported here so callers import from `driftline.config`.
"""

from driftline.config.estimators import (
    Custom,
    EarlyStopping,
    Estimator,
    HistGradientBoosting,
    LightGBM,
    LogisticRegression,
    RandomForest,
    Ridge,
    SklearnClass,
    XGBoost,
)
from driftline.config.evaluation import (
    Behavioral,
    Case,
    ComparisonConfig,
    Directional,
    EvaluationConfig,
    FairnessGate,
    Invariance,
    MinimumFunctionality,
    Threshold,
)
from driftline.config.load import ConfigError, apply_overrides, load_params, params_schema, parse_params
from driftline.config.params import Params
from driftline.config.rollout import (
    STRATEGIES,
    BlueGreen,
    Canary,
    RolloutConfig,
    Shadow,
    Strategy,
)
from driftline.config.sections import (
    DataConfig,
    DistributionCheck,
    Feature,
    MonitoringConfig,
    RegistryConfig,
    SplitConfig,
    Strict,
    TrainingConfig,
    ValidationConfig,
    names_by_type,
)
from driftline.config.settings import ServeSettings, Settings, serve_settings
from driftline.core.metrics import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    Task,
    metrics_for,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSION_METRICS",
    "STRATEGIES",
    "Behavioral",
    "BlueGreen",
    "Canary",
    "Case",
    "ComparisonConfig",
    "ConfigError",
    "Custom",
    "DataConfig",
    "Directional",
    "DistributionCheck",
    "EarlyStopping",
    "Estimator",
    "EvaluationConfig",
    "FairnessGate",
    "Feature",
    "HistGradientBoosting",
    "Invariance",
    "LightGBM",
    "LogisticRegression",
    "MinimumFunctionality",
    "MonitoringConfig",
    "Params",
    "RandomForest",
    "RegistryConfig",
    "Ridge",
    "RolloutConfig",
    "ServeSettings",
    "Settings",
    "Shadow",
    "SklearnClass",
    "SplitConfig",
    "Strategy",
    "Strict",
    "Task",
    "Threshold",
    "TrainingConfig",
    "ValidationConfig",
    "XGBoost",
    "apply_overrides",
    "load_params",
    "metrics_for",
    "names_by_type",
    "params_schema",
    "parse_params",
    "serve_settings",
]
