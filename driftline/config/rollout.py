"""The `rollout:` section: how a challenger is rolled out and judged on live traffic.

One model per strategy, chosen by `strategy:` (canary when left out), each with only the
settings it uses; the strategy names live here and nowhere else (`STRATEGIES`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from driftline.config.sections import Strict


class _Rollout(Strict):
    """What every strategy has."""

    max_wait_seconds: float = Field(default=600.0, gt=0, description="Give up (and roll back) after this.")
    auto_deploy: bool = Field(default=False, description="A newly registered challenger starts `rollout` "
                              "(this strategy) through the event driftline.challenger.registered.")
    staging: bool = Field(default=False, description="Before any production traffic, the challenger is served by "
                          "the staging server (DRIFTLINE_STAGING_URL) and must pass the smoke test and "
                          "evaluation.behavioral there, over HTTP; a failure rolls back like any check.")

    def as_strategy(self, name: str) -> RolloutConfig:
        """These settings for another strategy (`--strategy` differs from params): what both have carries
        over, the other's own settings take their defaults."""
        current: RolloutConfig = self  # type: ignore[assignment]  # every concrete strategy is one
        if name == current.strategy:
            return current
        other = BY_STRATEGY[name]
        shared = {k: v for k, v in self.model_dump().items() if k in other.model_fields and k != "strategy"}
        return other.model_validate({**shared, "strategy": name})


class _LiveAnalysis(_Rollout):
    """Canary and shadow judge the challenger against the champion on live traffic."""

    window_seconds: float = Field(default=60.0, gt=0, description="Analysis window at each step.")
    min_requests: int = Field(default=200, ge=1, description="Challenger requests needed to judge a step "
                              "(the score PSI is biased upwards on small samples: about 9/n with 10 bins).")
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_p95_ratio: float = Field(default=2.0, gt=0, description="Challenger p95 / champion p95.")
    max_score_psi: float = Field(default=0.25, ge=0, description="PSI of challenger vs champion scores.")
    min_labels: int = Field(default=30, ge=1, description="Labels per variant before accuracy counts.")
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1)


class Canary(_LiveAnalysis):
    """The challenger answers a growing share of requests, judged at each step."""

    strategy: Literal["canary"] = "canary"
    steps: list[float] = Field(default_factory=lambda: [0.1, 0.5, 1.0], min_length=1,
                               description="Challenger traffic weights, in order; the last is before promotion.")

    @property
    def stages(self) -> list[tuple[str, float]]:
        return [("canary", weight) for weight in self.steps]


class Shadow(_LiveAnalysis):
    """The challenger answers copies of requests; only the champion's answers are returned."""

    strategy: Literal["shadow"] = "shadow"
    min_agreement: float = Field(default=0.8, ge=0, le=1, description="Share of equal answers.")

    @property
    def stages(self) -> list[tuple[str, float]]:
        return [("shadow", 0.0)]


class BlueGreen(_Rollout):
    """The new version is staged on the live server, smoke-tested, then switched to at once."""

    strategy: Literal["blue-green"] = "blue-green"
    smoke_requests: int = Field(default=50, ge=1, description="Reference rows sent to the new version on the "
                                "live server before the switch; answers must match offline ones.")

    @property
    def stages(self) -> list[tuple[str, float]]:
        return [("blue-green", 0.0)]


RolloutConfig = Annotated[Canary | Shadow | BlueGreen, Field(discriminator="strategy")]

BY_STRATEGY: dict[str, type[Canary | Shadow | BlueGreen]] = {
    m.model_fields["strategy"].default: m for m in (Canary, Shadow, BlueGreen)
}
STRATEGIES: tuple[str, ...] = tuple(BY_STRATEGY)
DEFAULT_STRATEGY = "canary"
# A flow parameter's type, so Prefect refuses an unknown strategy before the run starts.
Strategy = Literal[STRATEGIES]  # type: ignore[valid-type]
