"""A rollout lease pinned by a future expiry: a process holding the lease is SIGKILLed, and its
lease says it expires in a year (what `--lease-ttl 1e9` then a kill left before lease lengths were
capped, or a clock far ahead). `driftline rollback` is refused naming the holder (exit 4); with
`--break-lease` it breaks the lease, rolls back, and the history says who broke what.

Before: nothing could break it; deploy and rollback exited 4 until the year was over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from driftline import services
from driftline.adapters.registry.lease import ROLLOUT, holder
from driftline.adapters.registry.store import CHAMPION, PREVIOUS
from driftline.adapters.registry.tags import LEASE_TAG, stamp
from tests.faults.conftest import REPO, train_champion
from tests.waiting import wait_until

YEAR = 365 * 24 * 3600.0

HOLD = """
import sys, time
from driftline import services
from driftline.adapters.registry.lease import ROLLOUT, Lease
with services.open_project(sys.argv[1]) as project:
    assert Lease(project.registry, ROLLOUT, "deploy:killed-mid-rollout", ttl_seconds=60).acquire()
    print("held", flush=True)
    time.sleep(3600)
"""


def _cli(root, prefect_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": prefect_url}
    return subprocess.run([sys.executable, "-m", "driftline.app.cli", "rollback", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_lease_pinned_by_a_future_expiry_is_broken_by_rollback_break_lease(tmp_path, prefect_url):
    root = tmp_path / "proj"
    assert train_champion(root) == "1"
    assert train_champion(root, seed=8) == "2"
    with services.open_project(root) as project:
        store = project.registry
        store.move_alias(PREVIOUS, "1", "test: v1 kept for rollbacks", "test")

    holding = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holding.stdout is not None and holding.stdout.readline().strip() == "held"
    finally:
        holding.send_signal(signal.SIGKILL)  # the holder is gone; its lease is not
        holding.wait(30)
    with services.open_project(root) as project:
        store = project.registry
        lease_model = f"{store.model_name}.lease.{ROLLOUT}"
        store.client.set_registered_model_tag(lease_model, f"{LEASE_TAG}.expires_at", stamp(time.time() + YEAR))
        seen = holder(store, ROLLOUT)
        assert seen is not None and seen.owner == "deploy:killed-mid-rollout"
        assert seen.expires_at <= seen.read_at + 3600  # a year ahead is read as at most an hour from now

    refused = _cli(root, prefect_url, "--reason", "test")
    assert refused.returncode == 4, refused.stdout[-2000:] + refused.stderr[-3000:]
    assert "deploy:killed-mid-rollout" in refused.stderr and "--break-lease" in refused.stderr

    broke = _cli(root, prefect_url, "--reason", "test", "--break-lease")
    assert broke.returncode == 0, broke.stdout[-2000:] + broke.stderr[-3000:]
    with services.open_project(root) as project:
        store = project.registry
        assert store.aliases() == {CHAMPION: "1", PREVIOUS: "2"}
        assert wait_until(lambda: holder(store, ROLLOUT) is None, 10)  # released after the rollback
        broken = [h for h in store.history() if h["alias"] == "rollout lease"]
        assert len(broken) == 1 and "deploy:killed-mid-rollout" in broken[0]["from"], broken
        assert "broken by `driftline rollback --break-lease`" in broken[0]["reason"]
