"""The alias history against the aliases: an alias that points elsewhere than the last change the
history records for it was moved directly in MLflow (its UI or its API), past driftline's rollout
lease, its gates and its record. The servers follow aliases whoever moves them, so such a move is
reported: by `driftline status`, a metric of every model server, and an alert rule."""

from __future__ import annotations

from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore

ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)


def unrecorded(store: MlflowStore) -> dict[str, tuple[str | None, str | None]]:
    """alias -> (the version it points at, the version its last recorded change set) for each alias
    that moved without a record."""
    last: dict[str, str | None] = {}
    for change in store.history():
        last[change["alias"]] = None if change["to"] in ("-", "") else change["to"]
    aliases = store.aliases()
    return {a: (aliases.get(a), last.get(a)) for a in ALIASES if aliases.get(a) != last.get(a)}


def describe(moved: dict[str, tuple[str | None, str | None]]) -> list[str]:
    return [f"@{alias} points at {now or 'nothing'}, but its last recorded change set it to {was or 'nothing'}: "
            "moved outside driftline (no lease, no gates, no history record)" for alias, (now, was) in moved.items()]
