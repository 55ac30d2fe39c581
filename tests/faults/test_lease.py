"""The registry lease against real MLflow stores: a SQLite file in tmp_path, and for the
unreachable case a real `mlflow server` process stopped with SIGSTOP, then killed. Contention
runs in separate processes that start together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftline.adapters.registry.faults import RegistryUnreachable
from driftline.adapters.registry.lease import Lease, holder
from driftline.adapters.registry.lease_info import LeaseHeld, LeaseLost
from driftline.adapters.registry.store import MlflowStore
from tests.integration.conftest import free_port
from tests.mlflow_db import empty_store
from tests.waiting import answers, wait_until

REPO = Path(__file__).resolve().parents[2]

# Each contender: build its store, say it is ready, wait for the go file, try once, print the outcome.
CONTENDER = """
import json, sys, time
from pathlib import Path
from driftline.adapters.registry.lease import Lease
from driftline.adapters.registry.store import MlflowStore
uri, art, model, owner, ready, go = sys.argv[1:7]
store = MlflowStore(uri, art, "leases", model).start()
lease = Lease(store, "rollout", owner, 60)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
won = lease.acquire()
print(json.dumps({"owner": owner, "won": won, "took_over": lease.took_over.owner if lease.took_over else None}))
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("lease")
    uri, art = empty_store(root / "mlflow.db"), str(root / "artifacts")
    MlflowStore(uri, art, "leases", "warm-up").start()  # the schema migrations, once
    return uri, art


def _store(db, model: str) -> MlflowStore:
    return MlflowStore(*db, "leases", model).start()


def _race(db, model: str, tmp_path: Path, n: int = 4) -> list[dict]:
    """n processes try the lease at the same instant; their outcomes."""
    go = tmp_path / "go"
    procs, ready = [], []
    for i in range(n):
        ready.append(tmp_path / f"ready-{i}")
        procs.append(subprocess.Popen([sys.executable, "-c", CONTENDER, *db, model, f"owner-{i}", str(ready[-1]),
                                       str(go)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                      env={**os.environ, "PYTHONPATH": str(REPO)}))
    wait_until(lambda: all(r.exists() for r in ready), 120, interval=0.05)
    go.touch()
    outcomes = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes


def test_of_processes_acquiring_at_once_exactly_one_wins(db, tmp_path):
    outcomes = _race(db, "race", tmp_path)
    winners = [o["owner"] for o in outcomes if o["won"]]
    assert len(winners) == 1, outcomes
    assert holder(_store(db, "race"), "rollout").owner == winners[0]


def test_an_expired_lease_is_taken_over_by_exactly_one_contender(db, tmp_path):
    store = _store(db, "takeover")
    dead = Lease(store, "rollout", "dead run", ttl_seconds=1)
    assert dead.acquire()
    while not holder(store, "rollout").expired:
        time.sleep(0.1)
    outcomes = _race(db, "takeover", tmp_path)
    winners = [o for o in outcomes if o["won"]]
    assert len(winners) == 1, outcomes
    # A contender that saw the expired lease names its holder (the winner may not have seen it:
    # another contender deleted it, then lost the race to create the new one).
    assert {o["took_over"] for o in outcomes} <= {"dead run", None}
    assert holder(store, "rollout").owner == winners[0]["owner"]
    # The one-winner claim names are gone once the takeover is done.
    assert [m.name for m in store.client.search_registered_models() if ".takeover." in m.name] == []
    # The dead holder, back from the dead, can neither renew nor release what is no longer its.
    with pytest.raises(LeaseLost, match=f"held by {winners[0]['owner']}"):
        dead.renew()
    assert dead.release() is False
    assert holder(store, "rollout").owner == winners[0]["owner"]


def test_a_live_lease_is_not_free_and_the_refusal_names_its_holder(db):
    store = _store(db, "live")
    first = Lease(store, "rollout", "flow run A", 60, purpose="deploy v2 (canary)")
    assert first.acquire()
    second = Lease(store, "rollout", "flow run B", 60)
    assert second.acquire() is False
    refused = r"held by flow run A \(deploy v2 \(canary\), on .*\) since .* until"
    with pytest.raises(LeaseHeld, match=refused) as held, Lease(store, "rollout", "flow run C", 60):
        pass
    assert held.value.holder.owner == "flow run A"
    assert first.release() and second.acquire()


def test_release_and_adopt_by_a_non_holder_are_refused(db):
    store = _store(db, "refuse")
    owner = Lease(store, "rollout", "flow run A", 60)
    assert owner.acquire()
    token = holder(store, "rollout").token
    stranger = Lease(store, "rollout", "flow run B", 60)
    assert stranger.release() is False  # never acquired
    assert stranger.adopt() is False  # not its owner
    stranger.token = "guessed"
    assert stranger.release() is False  # a token that is not the holder's
    with pytest.raises(LeaseLost):
        stranger.renew()
    assert holder(store, "rollout").token == token
    # The owner's hook, knowing only the owner's name, can take it up and release it.
    hook = Lease(store, "rollout", "flow run A", 60)
    assert hook.adopt() and hook.release()
    assert holder(store, "rollout") is None


def test_keep_alive_renews_past_the_ttl_and_a_takeover_is_then_refused(db):
    store = _store(db, "alive")
    lease = Lease(store, "rollout", "flow run A", ttl_seconds=3)
    assert lease.acquire()
    first_expiry = holder(store, "rollout").expires_at
    with lease.keep_alive():
        time.sleep(7)  # more than two ttls: without renewals it would have expired
        lease.check()
        current = holder(store, "rollout")
        assert current.expires_at > first_expiry and not current.expired
        assert Lease(store, "rollout", "flow run B", 3).acquire() is False
    assert lease.release()


def test_leases_of_other_names_and_models_are_independent(db):
    store, other = _store(db, "one"), _store(db, "two")
    assert Lease(store, "rollout", "A", 60).acquire()
    assert Lease(store, "drift-event", "B", 60).acquire()
    assert Lease(other, "rollout", "C", 60).acquire()
    assert {holder(store, "rollout").owner, holder(store, "drift-event").owner, holder(other, "rollout").owner} \
        == {"A", "B", "C"}


@pytest.fixture
def tracking_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: answers(f"{url}/health"), 120, interval=0.3):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("mlflow server did not start")
    yield url, proc
    os.killpg(proc.pid, signal.SIGCONT)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def test_an_unreachable_registry_raises_and_is_never_a_free_lease(tracking_server, tmp_path, monkeypatch):
    url, proc = tracking_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = MlflowStore(url, str(tmp_path / "artifacts"), "leases", "remote").start()
    held = Lease(store, "rollout", "flow run A", 60)
    assert held.acquire()  # the server answers: the lease works over REST as on SQLite

    os.killpg(proc.pid, signal.SIGSTOP)  # the server stops answering (a hung host)
    contender = Lease(store, "rollout", "flow run B", 60)
    for attempt in (contender.acquire, lambda: holder(store, "rollout"), held.release, held.renew):
        with pytest.raises(RegistryUnreachable, match=f"the model registry at {url} is unreachable") as raised:
            attempt()
        assert "timed out" in str(raised.value).lower(), raised.value

    os.killpg(proc.pid, signal.SIGCONT)
    assert holder(store, "rollout").owner == "flow run A"  # nothing changed while it was away
    os.killpg(proc.pid, signal.SIGKILL)  # now it is gone altogether: refused connections
    proc.wait(30)
    with pytest.raises(RegistryUnreachable) as raised:
        contender.acquire()
    assert "connect" in str(raised.value).lower(), raised.value
