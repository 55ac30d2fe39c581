"""What a deployment run's `overrides` may change: anyone who can reach the Prefect API can start a
run with any parameters, so a run may tune (the estimator's parameters, the seed, the search, a
rollout's pacing) but never loosen what decides (the data and its checks, the gates, the rollout's
thresholds, the drift rules, the registry) nor choose the code that runs (the estimator's kind,
class or factory, a derived feature's function). Compared on the parsed params, so that every
way of writing an override (`training.estimator={...}`, `training={...}`) is seen."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftline.config.params import Params

# The rollout's keys that pace it rather than judge it.
PACING = {"steps", "window_seconds", "max_wait_seconds"}


def refused(baseline: Params, candidate: Params) -> list[str]:
    """The keys `candidate` changes against `baseline` (the params a deployment was made with) that
    a deployment run may not change, each with why."""
    from driftline.config.load import code_changes

    found = [f"{key}: chooses the code the run executes" for key in code_changes(baseline, candidate)]
    for section in ("data", "validation", "split", "evaluation", "registry", "monitoring"):
        if getattr(baseline, section) != getattr(candidate, section):
            found.append(f"{section}: decides what the run accepts (the data, its checks, the gates, the drift "
                         "rules, the model it registers)")
    before, after = (p.rollout.model_dump(exclude=PACING) for p in (baseline, candidate))
    if before != after:
        keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
        found.append(f"rollout.{', rollout.'.join(keys)}: a rollout's thresholds decide a promotion (a deployment "
                     f"run may change only {', '.join(sorted(PACING))})")
    return found
