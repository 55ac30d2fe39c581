"""The whole parameter set: every section, checked across sections, with a stable digest."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import model_validator

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


class Params(Strict):
    data: DataConfig
    validation: ValidationConfig = ValidationConfig()
    split: SplitConfig = SplitConfig()
    training: TrainingConfig
    evaluation: EvaluationConfig
    registry: RegistryConfig
    rollout: RolloutConfig = Canary()
    monitoring: MonitoringConfig = MonitoringConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_strategy(cls, raw: Any) -> Any:
        # A section without `strategy:` is a canary, as it was before the strategies were a union.
        section = raw.get("rollout") if isinstance(raw, dict) else None
        if isinstance(section, dict) and "strategy" not in section:
            raw = {**raw, "rollout": {"strategy": DEFAULT_STRATEGY, **section}}
        return raw

    @model_validator(mode="after")
    def _check(self) -> Params:
        found = checks.problems(self)
        if found:
            raise ValueError("\n".join(found))
        return self

    @property
    def comparison_metric(self) -> str:
        return self.evaluation.comparison.metric or self.evaluation.primary_metric

    def digest(self) -> str:
        """Stable hash of the whole parameter set (tags, cache keys)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


