"""The micro-batcher with a real predict function: a request that breaks the model fails alone,
and a full queue refuses at once."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from driftline.serving.batching import MicroBatcher, Overloaded, PredictFailed


def _predict(key, records: list[dict]) -> dict:
    if any(r.get("poison") for r in records):
        raise ValueError("this batch holds a poisoned row")
    return {"labels": np.array([r["x"] * 2 for r in records]), "proba": None}


def test_a_request_that_breaks_the_batch_fails_alone_and_the_others_are_answered():
    calls: list[int] = []

    def predict(key, records):
        calls.append(len(records))
        return _predict(key, records)

    async def scenario():
        batcher = MicroBatcher(predict, max_batch=64, max_wait_ms=50)
        batcher.start()
        requests = [[{"x": i}] for i in range(40)]
        requests[17] = [{"x": 17, "poison": True}]
        outcomes = await asyncio.gather(*(batcher.submit("model", r) for r in requests), return_exceptions=True)
        await batcher.stop()
        return outcomes

    outcomes = asyncio.run(scenario())
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert failed == [17]
    assert isinstance(outcomes[17], PredictFailed) and outcomes[17].alone and "poisoned" in str(outcomes[17])
    assert [int(o["labels"][0]) for i, o in enumerate(outcomes) if i != 17] == [2 * i for i in range(40) if i != 17]
    assert calls[0] == 40 and len(calls) < 40  # one batch, then halves: not one call per request


def test_a_full_queue_refuses_at_once_instead_of_holding_the_request():
    release = threading.Event()

    def slow(key, records):
        release.wait(10)
        return _predict(key, records)

    async def scenario():
        batcher = MicroBatcher(slow, max_batch=1, max_wait_ms=0, max_pending=1)
        batcher.start()

        async def taken_by_the_batcher():
            await asyncio.sleep(0.05)
            while batcher._queue.qsize():
                await asyncio.sleep(0.01)

        first = asyncio.ensure_future(batcher.submit("m", [{"x": 1}]))
        await taken_by_the_batcher()  # predicting (blocked)
        second = asyncio.ensure_future(batcher.submit("m", [{"x": 2}]))
        await taken_by_the_batcher()  # taken, waits for the first batch to finish
        third = asyncio.ensure_future(batcher.submit("m", [{"x": 3}]))  # the one queued place
        await asyncio.sleep(0.05)
        try:
            with pytest.raises(Overloaded, match="1 requests already wait"):
                await batcher.submit("m", [{"x": 4}])
        finally:
            release.set()
        answers = await asyncio.gather(first, second, third)
        await batcher.stop()
        return [int(a["labels"][0]) for a in answers]

    assert asyncio.run(scenario()) == [2, 4, 6]
