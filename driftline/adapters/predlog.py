"""The prediction log: written off the hot path, in batches, as Parquet partitions by date and
hour (`<dir>/date=YYYY-MM-DD/hour=HH/part-*.parquet`). The drift monitor reads it back.

`<dir>` is a local directory or `s3://BUCKET/PREFIX` (through fsspec/s3fs; credentials from the
environment or the AWS files, an S3-compatible endpoint from `AWS_ENDPOINT_URL`).

Reading it back is `predlog_reader`."""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import os
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def join(base: str | Path, name: str) -> str:
    """`base/name` for a local directory or an s3:// address alike."""
    return f"{str(base).rstrip('/')}/{name}"


def filesystem(location: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(str(location))
    return fs, root.rstrip("/")


class PartitionedLog:
    """Rows in, Parquet parts out, on a thread of its own. A part that fails to write is retried;
    rows that cannot be encoded are found (by halving) and only they go to a local quarantine file
    (JSON lines, `<quarantine>/part-*.jsonl`); rows are dropped only when even that fails. The
    request path sees `full` and answers 503 instead of letting the backlog grow.

    `unique`: the columns that name a row (the feedback log's request id and record index); of
    rows a flush holds with the same values only the last is written. A full disk (ENOSPC) is not
    retried: its rows go to quarantine at once, and no half-written file is left behind.

    `keep` wakes the writer at once, but flushes start at least `gap_seconds` apart: callers
    waiting on kept rows share one part (at most 1 / gap_seconds parts a second) and wait at most
    about that long."""

    def __init__(self, directory: str | Path, flush_rows: int = 5000, flush_seconds: float = 2.0, *,
                 quarantine: str | Path | None = None, max_backlog: int = 100_000, retries: int = 3,
                 retry_seconds: float = 0.5, unique: tuple[str, ...] = (), gap_seconds: float = 0.2):
        self.directory = str(directory)
        self.fs, self.root = filesystem(directory)
        self.local = "file" in self.fs.protocol
        self.name = self.root.rsplit("/", 1)[-1]
        # Quarantine is always a local directory: it is where rows go when the log's store fails.
        self.quarantine = Path(quarantine) if quarantine else (Path(self.root).parent / "quarantine" / self.name
                                                               if self.local else None)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_backlog, self.retries, self.retry_seconds = max_backlog, retries, retry_seconds
        self.unique, self.gap_seconds = unique, gap_seconds
        self._queue: queue.SimpleQueue[list[dict] | _Kept | None] = queue.SimpleQueue()
        # The writer sleeps until a flush is due and then takes the whole queue: woken for every
        # append, it took the GIL from the request loop once a request (a fifth of a saturated
        # server's samples, and about a fifth of its throughput).
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{self.name}", daemon=True)
        self._lost: set[int] = set()  # ids of the rows the flush under way could not write
        # Each counter has one writer (appended: the request loop; the rest: the log thread).
        self.appended = self.taken = 0
        self.written = self.dropped = self.quarantined = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def full(self) -> bool:
        """Rows appended but not yet taken by the writer reached the bound."""
        return self.appended - self.taken >= self.max_backlog

    def append(self, rows: list[dict]) -> None:
        """Called on the request path: a queue put, and a wake-up only when a flush's worth is waiting."""
        self._put(rows, len(rows))

    def keep(self, rows: list[dict]) -> concurrent.futures.Future:
        """As `append`, with a future that says, after the flush that took them, whether every row
        was written to the log: True, or False when any went to quarantine (where no reader looks)
        or was dropped. For rows a caller must not acknowledge before they are written (labels).
        Wakes the writer now: the caller is waiting."""
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._put(_Kept(rows, done), len(rows))
        self._wake.set()
        return done

    def _put(self, item: list[dict] | _Kept, rows: int) -> None:
        self.appended += rows
        self._queue.put(item)
        if self.appended - self.taken >= self.flush_rows:
            self._wake.set()

    def stop(self) -> None:
        self._queue.put(None)
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        """Every `flush_seconds`, or as soon as `flush_rows` rows wait, take what is queued and flush it."""
        flushed = time.monotonic()
        while True:
            self._wake.wait(self.flush_seconds)
            # Rows kept during the gap join this flush rather than making a part each.
            time.sleep(max(0.0, self.gap_seconds - (time.monotonic() - flushed)))
            self._wake.clear()  # rows put after this wake it again; rows put before are taken below
            buffer: list[dict] = []
            waiting: list[_Kept] = []
            stopping = False
            while not stopping:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    continue
                if isinstance(item, _Kept):
                    waiting.append(item)
                    item = item.rows
                self.taken += len(item)
                buffer.extend(item)
            if buffer or waiting:
                self._flush_and_tell(buffer, waiting)
                flushed = time.monotonic()
            if stopping:
                return

    def _flush_and_tell(self, rows: list[dict], waiting: list[_Kept]) -> None:
        self._lost = set()
        try:
            self._flush(self._last_of_each(rows) if self.unique else rows)
        finally:
            # Each caller hears of its own rows only: another's row that failed is not its failure.
            for kept in waiting:
                if not kept.done.cancelled():
                    kept.done.set_result(not any(id(row) in self._lost for row in kept.rows))

    def _last_of_each(self, rows: list[dict]) -> list[dict]:
        """Rows that repeat another's `unique` values collapse to the last of them."""
        last = {tuple(row.get(k) for k in self.unique): i for i, row in enumerate(rows)}
        return rows if len(last) == len(rows) else [rows[i] for i in sorted(last.values())]

    def _flush(self, rows: list[dict]) -> None:
        # Straight to Arrow, partitioned on the ISO timestamp's text: the pandas route (frame,
        # to_datetime, groupby) cost this thread several times more, and it shares the GIL
        # with the request loop.
        parts: dict[tuple[str, str], list[dict]] = {}
        for row in rows:
            stamp = row.get("timestamp")
            key = (stamp[:10], stamp[11:13]) if isinstance(stamp, str) and len(stamp) >= 13 else None
            parts.setdefault(key, []).append(row)
        for key, part in parts.items():
            try:
                if key is None:
                    raise ValueError("row without an ISO timestamp")
                self._write(*key, part)
            except Exception as err:  # noqa: BLE001 - logging must never take serving down
                self._spill(part, f"{type(err).__name__}: {err}")

    def _write(self, day: str, hour: str, rows: list[dict]) -> None:
        try:
            table = _encode(rows)
        except Exception:  # noqa: BLE001 - some rows cannot be encoded: keep the others
            good, bad = _separate(rows)
            self._spill(bad, "row cannot be encoded as Parquet")
            if not good:
                return
            rows, table = good, _encode(good)
        target = f"{self.root}/date={day}/hour={hour}"
        for attempt in range(self.retries + 1):
            name = f"{target}/part-{uuid.uuid4().hex}.parquet"
            try:
                self.fs.makedirs(target, exist_ok=True)
                if self.local:  # readers glob *.parquet: they must never see a half-written part
                    pq.write_table(table, name + ".tmp", filesystem=self.fs)
                    os.replace(name + ".tmp", name)
                else:  # an S3 object appears whole
                    pq.write_table(table, name, filesystem=self.fs)
                self.written += len(rows)
                return
            except Exception as err:  # noqa: BLE001 - a store that keeps failing: keep the rows locally
                if self.local:
                    _remove(name + ".tmp")
                # A full disk stays full for longer than any retry here waits: sleeping only held
                # the rows behind it.
                if attempt == self.retries or _disk_full(err):
                    self._spill(rows, f"write failed {attempt + 1} times: {type(err).__name__}: {err}")
                    return
                time.sleep(self.retry_seconds * 2**attempt)

    def _spill(self, rows: list[dict], reason: str) -> None:
        if not rows:
            return
        self._lost.update(map(id, rows))
        try:
            if self.quarantine is None:
                raise RuntimeError("no quarantine directory")
            self.quarantine.mkdir(parents=True, exist_ok=True)
            name = self.quarantine / f"part-{uuid.uuid4().hex}.jsonl"
            # ensure_ascii escapes what Parquet refused (lone surrogates); repr covers any other object.
            text = "".join(json.dumps({"reason": reason, "row": row}, default=repr) + "\n" for row in rows)
            try:
                name.with_suffix(".tmp").write_text(text)
                os.replace(name.with_suffix(".tmp"), name)
            finally:
                _remove(name.with_suffix(".tmp"))
            self.quarantined += len(rows)
        except Exception:  # noqa: BLE001 - the last resort failed too: count what is lost
            self.dropped += len(rows)


class _Kept:
    """Rows appended by `keep`, with the future their caller waits on."""

    def __init__(self, rows: list[dict], done: concurrent.futures.Future):
        self.rows, self.done = rows, done


def _disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def _remove(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _encode(rows: list[dict]) -> pa.Table:
    names = dict.fromkeys(k for row in rows for k in row)
    return pa.table({k: [row.get(k) for row in rows] for k in names})


def _separate(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows that encode and the ones that do not, by halving: one bad row among 5000 costs
    ~25 encodes of shrinking halves, not 5000. Halves that encode alone but not together (a
    column's type differs between them) count as bad: one part must have one schema."""
    try:
        _encode(rows)
        return rows, []
    except Exception:  # noqa: BLE001
        if len(rows) == 1:
            return [], rows
    middle = len(rows) // 2
    good_a, bad_a = _separate(rows[:middle])
    good_b, bad_b = _separate(rows[middle:])
    good = good_a + good_b
    try:
        _encode(good)
    except Exception:  # noqa: BLE001
        return good_a, bad_a + good_b + bad_b
    return good, bad_a + bad_b


def now() -> str:
    # Always with microseconds: isoformat() leaves them out on a whole second, and a reader that
    # infers the format from the first stamp then fails on that one (a demo's canary did).
    return datetime.now(UTC).isoformat(timespec="microseconds")
