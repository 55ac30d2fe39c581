"""Checkpoints of a distributed fit in the artifact store: the booster every `checkpoint_every`
rounds, on the training run that fits it, found again by its key (the data's md5, the config and
the cluster shape) when the same training starts again after its flow run was killed.

Two artifact slots are written in turn and the run's tags name the slot and the rounds it holds
only once the write is done: a flow run killed in the middle of a write leaves the previous
checkpoint whole and named."""

from __future__ import annotations

from dataclasses import dataclass

from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.registry.tags import (
    CHECKPOINT_DONE_TAG,
    CHECKPOINT_KEY_TAG,
    CHECKPOINT_ROUNDS_TAG,
    CHECKPOINT_SLOT_TAG,
)

SLOTS = ("a", "b")


def _path(slot: str) -> str:
    return f"checkpoint/booster-{slot}.ubj"


@dataclass(frozen=True)
class Checkpoint:
    run_id: str
    rounds: int
    raw: bytes
    done: bool  # the fit had ended (all its rounds, or stopped early)


class Checkpoints:
    """The checkpoints of one key on one training run."""

    def __init__(self, store: MlflowStore, run_id: str, key: str):
        self.store, self.run_id, self.key = store, run_id, key
        self.slot, self.rounds = SLOTS[1], 0

    def save(self, rounds: int, raw: bytes, done: bool) -> None:
        if rounds < self.rounds or (rounds == self.rounds and not done):
            return
        slot = SLOTS[0] if self.slot == SLOTS[1] else SLOTS[1]
        self.store.log_bytes(self.run_id, raw, _path(slot))
        self.store.log(self.run_id, tags={CHECKPOINT_KEY_TAG: self.key, CHECKPOINT_SLOT_TAG: slot,
                                          CHECKPOINT_ROUNDS_TAG: str(rounds), CHECKPOINT_DONE_TAG: str(done).lower()})
        self.slot, self.rounds = slot, rounds


def latest(store: MlflowStore, key: str) -> Checkpoint | None:
    """The checkpoint of `key` with the most rounds, on any run of the experiment (None: none yet)."""
    runs = [r for r in store.runs_tagged(CHECKPOINT_KEY_TAG, key) if r.data.tags.get(CHECKPOINT_SLOT_TAG)]
    if not runs:
        return None
    best = max(runs, key=lambda r: (int(r.data.tags[CHECKPOINT_ROUNDS_TAG]),
                                    r.data.tags[CHECKPOINT_DONE_TAG] == "true"))
    tags = best.data.tags
    raw = store.read_bytes(best.info.run_id, _path(tags[CHECKPOINT_SLOT_TAG]))
    return Checkpoint(best.info.run_id, int(tags[CHECKPOINT_ROUNDS_TAG]), raw, tags[CHECKPOINT_DONE_TAG] == "true")
