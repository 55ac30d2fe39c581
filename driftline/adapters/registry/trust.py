"""Model trust made explicit: only versions whose gates passed are deployed, unless forced.

A registered model is cloudpickle: loading it runs its code on the model server. The registry
cannot tell a version training gated from one put there by hand (or by anyone with write access
to the registry or its artifact store), so training marks its own with a version tag, and a
rollout refuses every other version unless forced, which is recorded on the version and in the
alias history.
"""

from __future__ import annotations

from datetime import UTC, datetime

from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.registry.tags import FORCED_TAG, GATES_TAG

PASSED = "passed"
FORCED = "forced: its gates did not pass"  # the words a forced rollout adds to its history reasons


class Untrusted(ValueError):
    """A version without `driftline.gates=passed`, deployed without force."""


def passed(tags: dict[str, str]) -> bool:
    return tags.get(GATES_TAG) == PASSED


def admit(store: MlflowStore, version: str, force: bool, flow_run_id: str = "-") -> str:
    """Check that `version` may be rolled out. Returns "" for a gated version; for a forced one,
    tags it and returns the words to add to every history reason of the rollout.

    Raises `Untrusted` (unforced, not gated), ValueError (no such version) or RegistryUnreachable.
    """
    info = store.version(version)
    if info is None:
        raise ValueError(f"{store.model_name} has no version {version}")
    if passed(info.tags):
        return ""
    if not force:
        found = info.tags.get(GATES_TAG)
        raise Untrusted(
            f"{store.model_name} version {version} is not marked {GATES_TAG}={PASSED} "
            f"({'it says ' + repr(found) if found else 'no such tag'}): driftline's training did not pass its "
            "gates for it, or it was registered some other way. A model is code the server runs: deploy it "
            "anyway only if you trust where it came from, with --force (force=True), which is recorded on "
            "the version and in the alias history.")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    store.set_version_tag(version, FORCED_TAG, f"flow run {flow_run_id} at {when}")
    return FORCED
