"""Micro-batching: concurrent requests become one `predict` call, answered one by one.

One sklearn prediction on a single row costs ~16 ms here, almost all of it per-call overhead;
a 64-row batch costs about the same. So requests wait for company while the previous batch is
still predicting (they could not be served sooner), and up to `max_wait_ms` when the model is
idle (0 by default: see ServeSettings.max_wait_ms).

A batch whose predict fails is split in halves and retried until each failing request stands
alone, so one request that breaks the model fails only itself (the others in its batch are
answered). The queue is bounded: a full queue refuses at once (`Overloaded`) rather than holding
requests, and their memory, for longer than a client waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


class Overloaded(RuntimeError):
    """The queue is full: answer 503 and let the client retry."""


class PredictFailed(RuntimeError):
    """This request's predict failed. `alone`: it failed by itself while the requests batched with
    it were answered, so the cause is in its rows rather than in the model."""

    def __init__(self, cause: BaseException, alone: bool):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause, self.alone = cause, alone


@dataclass
class _Item:
    key: object  # the model the rows go to
    records: list[dict]
    future: asyncio.Future


class MicroBatcher:
    def __init__(self, predict: Callable[[Any, list[dict]], dict], max_batch: int = 64,
                 max_wait_ms: float = 0.0, max_pending: int = 1024):
        # (model key, records) -> {"labels": array, "proba": array | None}. The records of a whole
        # batch become one DataFrame in the predict thread, not one per request on the event loop.
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_pending = max_pending
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task | None = None
        # One thread: the model's own threads do the parallel work; more would oversubscribe.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        self._queue = asyncio.Queue(self.max_pending)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
        self._pool.shutdown(wait=False)

    async def submit(self, key: object, records: list[dict]) -> dict:
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Item(key, records, future))
        except asyncio.QueueFull:
            raise Overloaded(f"{self.max_pending} requests already wait for the model") from None
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        running: asyncio.Task | None = None
        while True:
            first = await self._queue.get()
            items, rows = [first], len(first.records)
            deadline = loop.time() + self.max_wait
            # Keep gathering while the previous batch is still predicting: those requests could
            # not be served sooner anyway, and a fuller batch costs about the same.
            while rows < self.max_batch:
                if not self._queue.empty():
                    item = self._queue.get_nowait()
                elif running is not None and not running.done():
                    await asyncio.wait([running])  # new requests queue up meanwhile
                    continue
                else:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        async with asyncio.timeout(timeout):
                            item = await self._queue.get()
                    except TimeoutError:
                        break
                items.append(item)
                rows += len(item.records)
            if running is not None:
                await running
            groups: dict[int, list[_Item]] = {}
            for item in items:
                groups.setdefault(id(item.key), []).append(item)
            running = loop.create_task(self._predict_groups(loop, list(groups.values())))

    async def _predict_groups(self, loop, groups: list[list[_Item]]) -> None:
        for group in groups:
            await self._predict_group(loop, group)

    async def _predict_group(self, loop, group: list[_Item]) -> None:
        failed = await self._settle(loop, group)
        for item, err in failed:
            if not item.future.done():
                # Alone: it failed by itself while another request of its batch was answered.
                item.future.set_exception(PredictFailed(err, alone=len(failed) < len(group)))

    async def _settle(self, loop, group: list[_Item]) -> list[tuple[_Item, BaseException]]:
        """Answer the group with one predict; if that fails, each half on its own, down to single
        requests. Returns the requests that failed alone, with their errors."""
        records = [r for item in group for r in item.records]
        try:
            out = await loop.run_in_executor(self._pool, self.predict, group[0].key, records)
        except Exception as err:  # noqa: BLE001 - narrowed down below; the request hears of it
            if len(group) == 1:
                return [(group[0], err)]
            middle = len(group) // 2
            return await self._settle(loop, group[:middle]) + await self._settle(loop, group[middle:])
        self.batches += 1
        self.rows += len(records)
        start = 0
        for item in group:
            end = start + len(item.records)
            part = {k: (v[start:end] if v is not None else None) for k, v in out.items()}
            if not item.future.done():
                item.future.set_result(part)
            start = end
        return []
