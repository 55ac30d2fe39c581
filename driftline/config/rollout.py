"""The `deployment:` section: how a challenger is rolled out and judged on live traffic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftline.config.sections import Strict


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
