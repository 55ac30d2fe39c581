"""Real processes for the registry fault tests: an `mlflow server` on SQLite, an HTTP tap in
front of it (or of the Prefect API) that shows each request before it goes on, so a fault is
injected at an exact moment (the champion read, the promotion's alias write), and a second
process holding the SQLite file locked."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.app.stack import JOBS
from tests.integration.conftest import free_port
from tests.mlflow_db import empty_store
from tests.waiting import answers, wait_until

REPO = Path(__file__).resolve().parents[2]

FORWARD, DROP = "forward", "drop"

# A second writer: BEGIN EXCLUSIVE keeps every other connection out (MLflow's SQLite is not in
# WAL mode, so readers wait too, up to MLflow's busy_timeout of 20 s, then fail).
_LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


class SqliteLock:
    """Another process holding `db` with BEGIN EXCLUSIVE until `release()`."""

    def __init__(self, db: Path):
        self.proc = subprocess.Popen([sys.executable, "-c", _LOCKER, str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        assert line == "locked", f"the locker said {line!r}"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)


class MlflowServer:
    """`mlflow server` on a SQLite file, in its own process group (SIGSTOP/SIGKILL reach every
    process it started)."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.db, self.port = root, root / "mlflow.db", free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.stopped = False

    def start(self) -> MlflowServer:
        with (self.root / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", empty_store(self.db),
                 "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, JOBS: "false"})  # as `driftline up` starts it
        def up() -> bool:
            assert self.proc.poll() is None, f"mlflow server exited:\n{self.log()[-3000:]}"
            return answers(f"{self.url}/health")

        if wait_until(up, 180, interval=0.3):
            return self
        raise AssertionError(f"mlflow server not up in 180 s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        if self.stopped:
            self.signal(signal.SIGCONT)
            self.stopped = False

    def kill(self) -> None:
        self.resume()  # a stopped group would hold SIGKILL's effect on its children until continued
        self.signal(signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}


class HttpTap:
    """A loopback HTTP/1.1 proxy that shows each request to `hook` before it goes upstream.
    `hook` may block (the request waits), send a signal, and returns FORWARD or DROP (the client's
    connection is closed unanswered, as by a network reset). WebSocket upgrades are piped as is
    after the hook has seen them. Everything it saw is in `seen` as (method, path)."""

    def __init__(self, upstream_port: int, hook: Callable[[Request], str] | None = None):
        self.upstream_port, self.hook = upstream_port, hook or (lambda r: FORWARD)
        self.seen: list[tuple[str, str]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            reader = client.makefile("rb")
            while (request := _read_request(reader)) is not None:
                self.seen.append((request.method, request.path))
                if self.hook(request) == DROP:
                    return
                if upstream is None:
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                    threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
                upstream.sendall(_raw(request))
                if request.headers.get("upgrade"):
                    _pipe(reader, upstream)
                    return
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                        sock.close()


def _read_request(reader) -> Request | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    raw_headers = []
    while (h := reader.readline()) not in (b"\r\n", b"\n", b""):
        raw_headers.append(h)
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while (size := int(reader.readline().split(b";")[0], 16)) > 0:
            body += reader.read(size)
            reader.readline()
        reader.readline()
        raw_headers = [h for h in raw_headers if not h.lower().startswith(b"transfer-encoding")]
        raw_headers.append(f"Content-Length: {len(body)}\r\n".encode())
    else:
        body = reader.read(int(headers.get("content-length", 0) or 0))
    request = Request(method, path, headers, body)
    request.head = line + b"".join(raw_headers) + b"\r\n"  # type: ignore[attr-defined]
    return request


def _raw(request: Request) -> bytes:
    return request.head + request.body  # type: ignore[attr-defined]


def _pipe(source, sink: socket.socket) -> None:
    read = source.read1 if hasattr(source, "read1") else (lambda n: source.recv(n))
    try:
        while chunk := read(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def cli(project, prefect_api: str, tracking_uri: str, *args: str, env: dict | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess:
    """`driftline ARGS` in its own process, as a user or a worker would run it."""
    full = {**os.environ, "PREFECT_API_URL": prefect_api, "DRIFTLINE_TRACKING_URI": tracking_uri,
            "DRIFTLINE_PROJECT_DIR": str(project.root), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "driftline.app.cli", *args], cwd=project.root, env=full,
                          capture_output=True, text=True, timeout=timeout)


def said(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"


def history_is_consistent(store: MlflowStore) -> bool:
    """Every alias change starts where the previous one of that alias ended, and the last one
    ends where the alias is now."""
    last: dict[str, str] = {}
    for h in store.history():
        if last.get(h["alias"], "-") != h["from"]:
            return False
        last[h["alias"]] = h["to"]
    aliases = store.aliases()
    return all(last.get(a, "-") == aliases.get(a, "-") for a in (CHAMPION, CHALLENGER, PREVIOUS))
