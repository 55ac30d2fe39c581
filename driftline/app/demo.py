"""`driftline demo`: the whole loop on the embedded demo data, with nobody pressing a button
between drift and promotion.

The local stack runs (Prefect server + UI, MLflow UI, the served deployments with their
triggers, the model server) with live, labelled traffic: a first champion; normal traffic that
the monitor calls normal; new labelled data lands in DVC; traffic shifts to applicants the
champion is sure about (features move, its estimated performance holds: no retraining); traffic
shifts to borderline applicants (the estimate falls before any label is back); the monitor emits
`driftline.drift.detected`; the `retrain-on-drift` deployment retrains once; the new challenger's
`driftline.challenger.registered` event starts a canary (`auto-deploy`) that promotes it; a
deliberately bad challenger is rolled back by the same path. The monitor runs with
`monitoring.trigger=estimated_performance`: drift retrains only when it hurts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from driftline import services
from driftline.adapters import dvc_data
from driftline.adapters.registry.store import CHAMPION
from driftline.adapters.serving_client import ServingClient
from driftline.app.cli_common import flow_settings
from driftline.app.lifecycle import no_second_interrupt, run_to_the_end
from driftline.app.project import DEMO_ROWS, DEMO_SEED
from driftline.app.stack import Stack
from driftline.app.traffic import Traffic, demo_records
from driftline.config import Params, ServeSettings, Settings, serve_settings
from driftline.core import demo_data
from driftline.waiting import WaitTimeout, heartbeat, poll

# Baked into every served deployment: short rollout windows so the story takes minutes (a
# production rollout uses params.yaml's), and a new challenger rolls out by itself. The windows
# still hold enough labels for live accuracy to tell: with ~200 a side, two equal models (the
# retrained one scores 0.735 on the drifted traffic, the champion 0.734) differ beyond the drop
# tolerance in about 1 of 400 checks (binomial, simulated), with 600 a side in about 1 of 5000.
DEMO_OVERRIDES = ["rollout.steps=[0.5, 1.0]", "rollout.window_seconds=5", "rollout.min_requests=600",
                  "rollout.min_labels=300", "rollout.max_wait_seconds=180", "rollout.auto_deploy=true"]
# Live requests a second, each labelled. At 60 or 100 the model server took most of a core (about
# 13 ms of sklearn per single-row batch) and slowed the trainings beside it (a fit of 52,000 rows:
# 14 s instead of 2) by more than the faster traffic saved.
RATE = 40
# The champion was trained a minute ago; the cooldown (hours by default) would rightly hold the
# event back, so the monitor's drift check is told to skip it, out loud.
NO_COOLDOWN = "monitoring.cooldown_hours=0"
# Drift retrains only when the champion's estimated (or, with labels, realized) ROC AUC falls.
TRIGGER = "monitoring.trigger=estimated_performance"
WINDOW = 600  # rows the monitor judges: the newest ones, all of one kind of traffic
SHIFTED_ROWS = 15_000
BAD = ["training.estimator.max_iter=1", "training.estimator.learning_rate=0.01",
       "evaluation.thresholds={}", "evaluation.behavioral=[]", "evaluation.fairness=[]",
       "evaluation.comparison.margin=1.0", "rollout.auto_deploy=true"]


class DemoFailed(RuntimeError):
    pass


def run(project: services.Project, params_path: Path, echo: Callable[[str], None],
        keep_serving: bool = True, mlflow_ui: bool = True) -> None:
    os.environ.setdefault("DRIFTLINE_SERVE_POLL_SECONDS", "1")
    settings, p, store = project.settings, project.params, project.registry
    url = ServeSettings().address
    base = ["--params", str(params_path)]
    echo("0. The local stack (`driftline up`): Prefect server and UI, MLflow UI, the deployments, the model server")
    stack = Stack(settings, params_path, DEMO_OVERRIDES, mlflow_ui, echo)
    dvc_file = dvc_data.dvc_file_for(settings.root, p.data.path)
    tracked = dvc_file.read_bytes()  # step 3 lands new data; the end puts this back
    traffic: Traffic | None = None
    failures: list = []
    sent = 0
    failed = True
    try:  # from the stack's start: a Ctrl-C just after its last line must still stop it
        stack.start()
        cfg = serve_settings(settings.state)  # with the label token the stack made for the traffic's labels
        began = datetime.now(UTC).isoformat()  # the server may hold an earlier demo's runs
        cli = _cli_runner(stack.env, echo)
        echo("\n1. The first champion (trained now unless it already exists)")
        cli("train", *base, "--search", "--reason", "demo")
        with ServingClient.of(cfg) as client:
            client.wait_for(lambda m: m.get("champion") in m.get("loaded", []), 120)

        echo(f"\n2. Normal traffic: {RATE} requests/s on {url}, each labelled through /feedback")
        traffic = Traffic(url, p, rate=RATE, threads=2, token=cfg.token, feedback_token=cfg.feedback_token,
                          seed=31)
        _until_sent(traffic, WINDOW + 200)
        echo(f"   the monitor runs with --set {TRIGGER}: drift retrains only when the champion's estimated "
             "(or, with enough labels, realized) ROC AUC falls")
        verdict = _monitor(settings, params_path, echo, TRIGGER)
        if verdict["status"] != "no_drift":
            raise DemoFailed(f"the monitor saw {verdict['status']} in normal traffic: {verdict['message']}")
        sent, failures = sent + traffic.sent, failures + traffic.failures
        traffic.stop()

        echo(f"\n3. New labelled data lands in DVC: the demo data plus {SHIFTED_ROWS:,} applications from a "
             "new population")
        md5 = _land_data(settings.root, p, store, echo)
        echo(f"   data.dvc now records md5 {md5} (pushed to the DVC remote; `git diff data.dvc` shows it until "
             "the demo ends and puts the original back)")

        echo("\n4. Traffic shifts to clear-cut applicants, the ones the champion is sure about; their labels "
             "come when the loans mature, months from now")
        harmless = Traffic(url, p, scenario="clear_cut", rate=RATE, threads=2, token=cfg.token,
                           feedback_token=cfg.feedback_token, seed=33, hold_labels=True)
        _until_sent(harmless, WINDOW + 20)
        harmless.stop()
        echo(f"   (the cooldown is skipped for these checks with --set {NO_COOLDOWN}: the champion is minutes old)")
        verdict = _monitor(settings, params_path, echo, TRIGGER, NO_COOLDOWN)
        if verdict["status"] != "no_drift" or verdict["drift_share"] < p.monitoring.drift_share:
            raise DemoFailed(f"the shift the champion handles was not judged harmless: {verdict['message']}")
        echo(f"   the features moved ({verdict['drift_share']:.0%} drifted: the features rule would retrain), "
             "the estimate holds: no event, no retraining")
        judged_then = verdict["mlflow_run_id"]
        sent += harmless.sent

        echo("\n5. Traffic shifts to borderline applicants, near the champion's decision threshold; no label yet")
        traffic = Traffic(url, p, scenario="borderline", rate=RATE, threads=2, token=cfg.token,
                          feedback_token=cfg.feedback_token, seed=32, hold_labels=True)
        _until_sent(traffic, WINDOW + 20)
        verdict = _monitor(settings, params_path, echo, TRIGGER, NO_COOLDOWN)
        if verdict["status"] != "drift":
            raise DemoFailed(f"the monitor did not see the harmful shift: {verdict['message']}")
        echo("   the event driftline.drift.detected is out; Prefect UI > Events shows it")
        # From here on each answer is labelled at once: the canary judges live accuracy.
        traffic.hold_labels = False
        echo(f"   the labels of those {traffic.release_labels():,} answers arrive (the canary will need labels)")
        again = _monitor(settings, params_path, echo, TRIGGER)
        echo(f"   a second check right away: {again['status']} (no second event)")

        echo("\n6. The event starts the retrain-on-drift deployment: one training run on the new data")
        new_runs = stack.wait_for_runs("retrain-on-drift", 1, 600, began)
        if len(new_runs) != 1 or new_runs[0]["state"]["type"] != "COMPLETED":
            raise DemoFailed(f"retrain-on-drift: expected one completed run, got "
                             f"{[r['state']['name'] for r in new_runs]}")
        challenger = _newest_version(store)
        echo(f"   flow run {new_runs[0]['name']} registered version {challenger} as @challenger")

        echo("\n7. Its driftline.challenger.registered event starts auto-deploy: a canary (50% then 100%) "
             "judged on live errors, latency, scores and labels")
        auto = stack.wait_for_runs("auto-deploy", 1, 600, began)
        _expect_state(auto[0], "COMPLETED", "the canary")
        with ServingClient.of(cfg) as client:
            client.wait_for(lambda m: m.get("champion") == challenger, 60)
        echo(f"   promoted: @champion is version {challenger}; @previous is {store.aliases().get('previous')}")

        echo("\n8. A deliberately bad challenger (one boosting round, its gates switched off) takes the same path")
        cli("train", *base, "--reason", "demo-bad", *[a for o in BAD for a in ("--set", o)])
        auto = stack.wait_for_runs("auto-deploy", 2, 600, began)
        _expect_state(auto[1], "FAILED", "the bad canary")
        if store.aliases().get(CHAMPION) != challenger:
            raise DemoFailed("the bad challenger's rollback did not leave @champion where it was")
        echo(f"   rolled back automatically: @champion stays on version {challenger}")

        echo("\n9. Months later the clear-cut applicants' loans have matured: the labels of step 4 arrive")
        released = {label["request_id"] for label in harmless.held}
        echo(f"   {harmless.release_labels(url=url):,} labels for the answers of step 4")
        _until_written(project, released, datetime.fromisoformat(began))
        _monitor(settings, params_path, echo, TRIGGER)
        _realized_later(store, judged_then, echo)

        echo("\n10. Every alias change, append-only in MLflow")
        cli("history", *base)
        sent, failures = sent + traffic.sent, failures + traffic.failures + harmless.failures
        if failures:
            raise DemoFailed(f"{len(failures)} live requests failed during the demo; first: {failures[0]}")
        echo(f"{sent} live requests through drift, retraining, a promotion and a rollback; none failed.")
        failed = False
    finally:
        with no_second_interrupt():
            if traffic is not None:
                traffic.stop()
            _restore_data(settings.root, dvc_file, tracked, echo)
            if failed or not keep_serving:
                stack.stop()  # last: its final line says what was stopped
    echo(f"\nTry: curl -s {url}/predict -H 'content-type: application/json' -d '{_example(p)}'\n"
         f"Prefect UI: {settings.prefect_ui_url} (flow runs, deployments, events, artifacts)   "
         f"MLflow UI: {settings.mlflow_ui_url} (runs, the drift report, the registry)")
    if keep_serving:
        echo("The stack keeps running; Ctrl-C stops all of it.")
        try:
            stack.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stack.stop()


def _until_written(project: services.Project, ids: set[str], since: datetime) -> None:
    """The server writes labels in batches (every 2 s): the check that follows must read these."""
    try:
        poll(lambda: ids <= set(project.services.prediction_log.labels(since).get("request_id", ())), 60, 0.5)
    except WaitTimeout:
        raise DemoFailed("the labels of step 4 were not written to the feedback log within 60 s") from None


def _realized_later(store, run_id: str, echo: Callable[[str], None]) -> None:
    """What the labels that arrived say about step 4's window, as its monitor run now records it."""
    m = store.client.get_run(run_id).data.metrics
    if "realized_roc_auc" not in m:
        raise DemoFailed("the labels of step 4's window were not joined to it")
    echo(f"   step 4's window judged again on its labels: realized ROC AUC {m['realized_roc_auc']:.3f} against the "
         f"{m['estimated_roc_auc']:.3f} estimated then (error {m['estimation_error_roc_auc']:+.3f}; "
         f"{m['label_coverage']:.0%} of its rows labelled), on its MLflow run {run_id}")


def _cli_runner(env: dict[str, str], echo: Callable[[str], None]) -> Callable[..., None]:
    def cli(*args: str) -> None:
        """A command as the user would type it; interrupted, it is gone before the demo stops its stack."""
        echo(f"$ driftline {' '.join(args)}")
        code = run_to_the_end([sys.executable, "-m", "driftline.app.cli", *args], env)
        if code != 0:
            raise DemoFailed(f"`driftline {' '.join(args)}` exited {code}")
    return cli


def _until_sent(traffic: Traffic, n: int, seconds: float = 120) -> None:
    try:
        poll(lambda: traffic.sent >= n, seconds, 0.5)
    except WaitTimeout:
        raise DemoFailed(f"only {traffic.sent} of {n} requests sent in {seconds:.0f} s") from None
    time.sleep(3)  # the server's log flushes every 2 s


def _monitor(settings: Settings, params_path: Path, echo: Callable[[str], None], *overrides: str) -> dict:
    from flows.monitor import drift_monitor

    echo(f"$ driftline monitor --last-rows {WINDOW}" + "".join(f" --set {o}" for o in overrides))
    with flow_settings():  # as `driftline monitor` runs it
        result = drift_monitor(last_rows=WINDOW, params_path=str(params_path), overrides=list(overrides),
                               project_dir=str(settings.root))
    echo(f"   [{result['status']}] {result['message']}")
    if result.get("report_url"):
        echo(f"   drift report: {result['report_url']}")
    return result


def _land_data(root: Path, p: Params, store, echo: Callable[[str], None]) -> str:
    """The demo data plus shifted, labelled rows; a seed per landing, so a rerun lands new data."""
    seed = 100 + len(store.versions())
    frame = pd.concat([demo_data.generate(DEMO_ROWS, DEMO_SEED),
                       demo_data.generate(SHIFTED_ROWS, seed, "covariate_shift")], ignore_index=True)
    frame.to_parquet(root / p.data.path, index=False)
    with heartbeat(echo, "   dvc add + push"):
        dvc_file = dvc_data.add(root, Path(p.data.path).parts[0])
        dvc_data.push(root, dvc_file)
    return dvc_data.tracked_md5(dvc_file)


def _restore_data(root: Path, dvc_file: Path, tracked: bytes, echo: Callable[[str], None]) -> None:
    """Leave the user's repository as the demo found it: the landed data stays in the DVC cache and
    remote (the demo's registry points at it), but data.dvc and data/ go back to what was tracked."""
    if dvc_file.read_bytes() == tracked:
        return
    dvc_file.write_bytes(tracked)
    dvc_data.checkout(root, dvc_file)
    echo(f"   {dvc_file.name} and {dvc_file.stem}/ are back as they were before the demo (`git status` is clean)")


def _newest_version(store) -> str:
    versions = store.versions()
    if not versions:
        raise DemoFailed("no model version registered")
    return max(versions, key=lambda v: int(v.version)).version


def _expect_state(run: dict, state: str, what: str) -> None:
    if run["state"]["type"] != state:
        raise DemoFailed(f"{what}: flow run {run['name']} ended {run['state']['name']}, expected {state.lower()}: "
                         f"{run['state'].get('message') or ''}")


def _example(p: Params) -> str:
    records, _ = demo_records(p, 1, 5)
    return json.dumps(records[0])
