"""The rollout's state in the registry, and the one lease that guards it.

A rollout is `@challenger` plus two registered-model tags (strategy, weight), changed only by
whoever holds the model's "rollout" lease (driftline.adapters.registry.lease): `rollout`, `rollback`, and
training for the brief moment it moves `@challenger`. Rollout tags count only while that lease
is live: the model server treats tags without a live lease as no rollout (weight 0), and
`reconcile` (next deploy, drift monitor, or a failure hook) writes them back to none/0 and
releases a dead holder's lease.

A version that training registers while a rollout holds the lease waits, tagged
`driftline.awaiting_rollout`; whoever ends the rollout makes the newest waiting version
`@challenger` and announces it (the `announce` callback: the library never talks to Prefect).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from driftline.adapters.registry.faults import call
from driftline.adapters.registry.lease import ROLLOUT, Lease, holder
from driftline.adapters.registry.lease_info import LeaseHeld, LeaseInfo, iso
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS
from driftline.adapters.registry.tags import AWAITING_TAG, STRATEGY_TAG, WEIGHT_TAG

if TYPE_CHECKING:
    from driftline.adapters.registry.store import MlflowStore

CLEARED = {STRATEGY_TAG: "none", WEIGHT_TAG: "0"}

# A dead holder (SIGKILL) blocks rollouts this long at most; a live one renews every ttl/3.
ROLLOUT_TTL_SECONDS = 60.0
# Training waits this long for a rollout lease before its version waits instead: a registration
# holds the lease for about a second, a rollout for minutes.
REGISTER_WAIT_SECONDS = 10.0

Announce = Callable[[str], None]


def weight(tags: dict[str, str]) -> float:
    try:
        return min(max(float(tags.get(WEIGHT_TAG, 0.0)), 0.0), 1.0)
    except ValueError:
        return 0.0


def active(tags: dict[str, str]) -> bool:
    """Do these tags route any traffic to, or mirror it onto, the challenger?"""
    return tags.get(STRATEGY_TAG, "none") != "none" or weight(tags) > 0


def live_holder(store: MlflowStore) -> LeaseInfo | None:
    current = holder(store, ROLLOUT)
    return current if current is not None and not current.expired else None


def lease(store: MlflowStore, owner: str, purpose: str, ttl: float = ROLLOUT_TTL_SECONDS) -> Lease:
    return Lease(store, ROLLOUT, owner, ttl, purpose)


def clear(store: MlflowStore) -> None:
    store.set_model_tags(CLEARED)


def set_rollout(store: MlflowStore, strategy: str, weight: float) -> None:
    store.set_model_tags({STRATEGY_TAG: strategy, WEIGHT_TAG: f"{weight:g}"})


def promote_awaiting(store: MlflowStore, reason: str, flow_run_id: str) -> str | None:
    """Under the rollout lease: the newest version registered during a rollout becomes
    `@challenger` (unless a newer one holds it already); the older ones are superseded."""
    awaiting = sorted((v for v in store.versions() if v.tags.get(AWAITING_TAG) == "true"), key=lambda v: int(v.version))
    if not awaiting:
        return None
    newest, aliases = awaiting[-1].version, store.aliases()
    current = aliases.get(CHALLENGER)
    moved = None
    if newest != aliases.get(CHAMPION) and not (current and int(current) > int(newest)):
        store.move_alias(CHALLENGER, newest, reason, flow_run_id)
        moved = newest
    # Only after the move: a crash in between leaves the tag, and the next reconcile moves it again.
    for v in awaiting:
        call(store.tracking_uri, f"untag version {v.version}", store.client.delete_model_version_tag,
             store.model_name, v.version, AWAITING_TAG, absent=None)
    return moved


def offer_challenger(store: MlflowStore, version: str, reason: str, flow_run_id: str) -> bool:
    """Training's alias decision: `@challenger` -> `version` now when no rollout holds the model;
    otherwise `version` waits (tagged) and moves when the rollout ends. True when it moved.

    The tag comes first: a rollout that ends while we wait sees it (and moves the alias), and
    one that read the tags just before still releases within our wait (and we move it)."""
    call(store.tracking_uri, f"tag version {version}", store.client.set_model_version_tag, store.model_name, version,
         AWAITING_TAG, "true")
    mine = lease(store, f"training flow run {flow_run_id}", f"register v{version} as @{CHALLENGER}")
    if not mine.acquire(wait_seconds=REGISTER_WAIT_SECONDS):
        return False
    try:
        return promote_awaiting(store, reason, flow_run_id) == version
    finally:
        mine.release()


def _end(store: MlflowStore, flow_run_id: str, why: str) -> tuple[list[str], str | None]:
    done = []
    tags = store.model_tags()
    if active(tags):
        clear(store)
        done.append(f"rollout tags {tags.get(STRATEGY_TAG, 'none')}/{tags.get(WEIGHT_TAG, '0')} set to none/0")
    challenger = promote_awaiting(store, f"registered during a rollout; @{CHALLENGER} once it ended ({why})",
                                  flow_run_id)
    if challenger:
        done.append(f"version {challenger}, registered during the rollout, is now @{CHALLENGER}")
    return done, challenger


def finish(store: MlflowStore, held: Lease, flow_run_id: str, why: str, announce: Announce | None = None) -> str:
    """End the rollout `held` guards (any end: promoted, rolled back, failed): tags to none/0,
    a waiting version to `@challenger`, the lease released, then the waiting version announced."""
    try:
        done, challenger = _end(store, flow_run_id, why)
    finally:
        held.release()
    if challenger and announce:
        announce(challenger)
    return "; ".join(done)


def end_rollout(store: MlflowStore, owner: str, flow_run_id: str, why: str,
                announce: Announce | None = None) -> str | None:
    """For a failure, crash or cancellation hook, where only the owner's name is known: end the
    rollout if this owner holds it; otherwise only reconcile (never touch another's rollout)."""
    held = lease(store, owner, why)
    if not held.adopt():
        return reconcile(store, announce, flow_run_id)
    return finish(store, held, flow_run_id, why, announce) or "nothing to undo"


def reconcile(store: MlflowStore, announce: Announce | None = None, flow_run_id: str = "-") -> str | None:
    """Clean up after a rollout whose process died (SIGKILL: no hook ran): when no live lease
    holds the model, rollout tags go back to none/0, an expired lease is taken back and released,
    and a waiting version becomes `@challenger`. None when there was nothing to do or a live
    rollout is under way. Raises when the registry does not answer (nothing changed)."""
    current = holder(store, ROLLOUT)
    if current is not None and not current.expired:
        return None
    if current is None and not active(store.model_tags()) and not any(
            v.tags.get(AWAITING_TAG) == "true" for v in store.versions()):
        return None
    mine = lease(store, f"reconcile (flow run {flow_run_id})", "reconcile a dead rollout")
    if not mine.acquire():
        return None  # someone else just took it: theirs to finish
    dead = f"the rollout lease {current.describe()}" if current is not None else None
    done = finish(store, mine, flow_run_id, f"reconciled: {dead or 'no live rollout lease'}", announce)
    parts = ([f"took back {dead}"] if dead else []) + ([done] if done else [])
    return "; ".join(parts) or None


def describe(store: MlflowStore) -> dict:
    """For `driftline status`: the rollout tags, and who holds the lease (if anyone)."""
    tags, current = store.model_tags(), holder(store, ROLLOUT)
    return {"strategy": tags.get(STRATEGY_TAG, "none"), "weight": weight(tags), "tags_active": active(tags),
            "in_progress": current is not None and not current.expired,
            "lease": None if current is None else {
                "owner": current.owner, "purpose": current.purpose, "host": current.host,
                "acquired_at": iso(current.acquired_at), "expires_at": iso(current.expires_at),
                "expired": current.expired}}


def status_line(r: dict) -> str:
    """`describe` in one line, for `driftline status`."""
    lease, tags = r["lease"], f"{r['strategy']} at weight {r['weight']:g}"
    if r["in_progress"]:
        return (f"rollout in progress: {lease['purpose']}, {tags}; lease held by {lease['owner']} "
                f"(on {lease['host']}) since {lease['acquired_at']}, expires {lease['expires_at']} unless renewed")
    if lease:
        return (f"rollout lease of {lease['owner']} ({lease['purpose']}) expired at {lease['expires_at']}: that run "
                f"died; tags {tags} are not served, the next deploy or drift monitor clears them")
    if r["tags_active"]:
        return f"rollout tags {tags} without a rollout lease: not served; the next deploy or drift monitor clears them"
    return "no rollout in progress"


def hold(store: MlflowStore, owner: str, purpose: str, wait_seconds: float, ttl_seconds: float) -> Lease:
    """The rollout lease, waiting up to `wait_seconds` for a rollout in progress to end; LeaseHeld
    (naming the holder, nothing changed) when it does not. A dead run's tags are cleared at once:
    they must not route traffic under our live lease."""
    held = lease(store, owner, purpose, ttl_seconds)
    if not held.acquire(wait_seconds=wait_seconds, poll=min(5.0, max(wait_seconds / 10, 0.5))):
        raise LeaseHeld(f"cannot {purpose}: {held.held_message()}; waited {wait_seconds:g} s and changed nothing",
                        live_holder(store))
    if held.took_over or active(store.model_tags()):
        clear(store)
    return held


def move_alias(store: MlflowStore, alias: str, version: str | None, reason: str, flow_run_id: str) -> str | None:
    """Point `alias` at `version`; returns where it pointed before (what an undo restores)."""
    before = store.aliases().get(alias)
    store.move_alias(alias, version, reason, flow_run_id)
    return before


def undo_move(store: MlflowStore, alias: str, before: str | None, after: str | None, reason: str,
              flow_run_id: str) -> bool:
    """Undo one move of this run only: an alias that no longer points where this run put it has
    been moved since by someone else, and putting it back would undo their change. False then."""
    if store.aliases().get(alias) != after:
        return False
    store.move_alias(alias, before, reason, flow_run_id)
    return True


def roll_back(store: MlflowStore, version: str, why: str, flow_run_id: str) -> str | None:
    """Undo what a rollout changed: the weight to 0 and `@challenger` off the version it put there.
    `@champion` is not the rollout's to restore (it never moved it): if it changed meanwhile,
    someone else promoted, and that stands. Returns the champion."""
    clear(store)
    if store.aliases().get(CHALLENGER) == version:
        store.move_alias(CHALLENGER, None, f"rolled back: {why}", flow_run_id)
    return store.aliases().get(CHAMPION)


def restore_previous(store: MlflowStore, reason: str, flow_run_id: str) -> tuple[str, str | None]:
    """Under the rollout lease: @champion back to @previous, @previous to the version it replaced.
    Returns (new champion, new previous); ValueError when there is no @previous."""
    aliases = store.aliases()
    previous, current = aliases.get(PREVIOUS), aliases.get(CHAMPION)
    if previous is None:
        raise ValueError(f"{store.model_name} has no @previous to roll back to")
    clear(store)
    store.move_alias(CHAMPION, previous, reason, flow_run_id)
    store.move_alias(PREVIOUS, current, reason, flow_run_id)
    return previous, current
