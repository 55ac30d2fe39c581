"""The whole parameter set: every section, checked across sections, with a stable digest."""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

from pydantic import Field, model_validator

from driftline.config import checks
from driftline.config.evaluation import EvaluationConfig
from driftline.config.rollout import DEFAULT_STRATEGY, Canary, RolloutConfig
from driftline.config.sections import (
    DataConfig,
    MonitoringConfig,
    RegistryConfig,
    SplitConfig,
    Strict,
    TrainingConfig,
    ValidationConfig,
)

# Sections renamed, read under their old name (with a warning) for one release.
RENAMED = {"deployment": "rollout"}


def renamed_warning(old: str, new: str, where: str) -> None:
    warnings.warn(f"{where}: `{old}` is deprecated, it is now `{new}` (read as `{new}` for this release only; "
                  f"rename it)", FutureWarning, stacklevel=3)


class Params(Strict):
    data: DataConfig
    validation: ValidationConfig = ValidationConfig()
    split: SplitConfig = SplitConfig()
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig
    registry: RegistryConfig
    rollout: RolloutConfig = Canary()
    monitoring: MonitoringConfig = MonitoringConfig()

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        for old, new in RENAMED.items():
            if old in raw:
                if new in raw:
                    raise ValueError(f"{old}: renamed {new}, and both are given; keep only {new}")
                renamed_warning(f"{old}:", f"{new}:", "params")
                raw = {new if key == old else key: value for key, value in raw.items()}
        # A section without `strategy:` is a canary, as it was before the strategies were a union.
        section = raw.get("rollout")
        if isinstance(section, dict) and "strategy" not in section:
            raw = {**raw, "rollout": {"strategy": DEFAULT_STRATEGY, **section}}
        return raw

    @model_validator(mode="after")
    def _check(self) -> Params:
        found = checks.problems(self)
        if found:
            raise ValueError("\n".join(found))
        return self

    def defaults_chosen(self) -> list[str]:
        """A line for each section that the params file left out and that chose a model for it."""
        if "training" in self.model_fields_set:
            return []
        est = {k: v for k, v in self.training.estimator.estimator_params().items() if v is not None}
        settings = ", ".join(f"{k}={v}" for k, v in est.items())
        return [f"training: not in the params file, so the default: {self.training.estimator.kind} ({settings}), "
                f"seed {self.training.seed}"]

    @property
    def comparison_metric(self) -> str:
        return self.evaluation.comparison.metric or self.evaluation.primary_metric

    def digest(self) -> str:
        """Stable hash of the whole parameter set (tags, cache keys)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


