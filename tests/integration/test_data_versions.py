"""A new DVC data version checked against the one the champion was trained on, through the real
training flow: the champion's version read back from DVC by its recorded md5 (from the remote when
the cache lost it), each poison stopped by the check that names it, a clean new version
registered, and a poison that passes the label check on purpose refused on the pinned set."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.errors import GatesFailed, ValidationFailed
from tests.integration.conftest import make_project

FAST = ["training.estimator.max_iter=60", "evaluation.comparison.bootstrap_samples=200"]


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A project whose @champion (version 1) was trained on the first data version."""
    project = make_project(tmp_path_factory.mktemp("versions") / "proj", rows=6000)
    assert project.train(*FAST)["version"] == "1"
    clean = pd.read_parquet(project.root / "data" / "loans.parquet")
    return project, clean


def _new_version(project, frame: pd.DataFrame) -> None:
    project.write_data(frame)


def _restore(project, clean: pd.DataFrame) -> None:
    project.write_data(clean)


def _stopped(project, clean, frame, *overrides) -> str:
    _new_version(project, frame)
    try:
        with pytest.raises((ValidationFailed, GatesFailed)) as info:
            project.train(*FAST, *overrides)
    finally:
        _restore(project, clean)
    store = project.store()
    assert store.version_by_alias("champion").version == "1"  # production untouched
    assert len(store.client.search_model_versions(f"name='{store.model_name}'")) == 1
    return str(info.value)


def _grown(clean: pd.DataFrame, rows: int = 2000) -> pd.DataFrame:
    from driftline.core import demo_data

    return pd.concat([clean, demo_data.generate(rows, 99)], ignore_index=True)


def test_random_label_flips_stop_the_run_naming_the_labels(champion):
    project, clean = champion
    frame = _grown(clean)
    flip = np.random.default_rng(1).random(len(clean)) < 0.10
    frame.loc[np.flatnonzero(flip), "defaulted"] = 1 - frame.loc[np.flatnonzero(flip), "defaulted"]
    message = _stopped(project, clean, frame)
    assert f"{flip.sum()} of the 6000 rows present in version 1's data changed their label" in message


def test_near_copies_stop_the_run_naming_them(champion):
    project, clean = champion
    copies = clean.sample(500, random_state=2)
    frame = pd.concat([clean, *[copies.assign(loan_amount=copies["loan_amount"] + i) for i in range(1, 10)]],
                      ignore_index=True)
    message = _stopped(project, clean, frame)
    assert "% of rows repeat another once numbers are rounded to 3 significant digits" in message
    assert "the largest group 10 rows" in message  # each row and its nine nudged copies


def test_a_removed_group_stops_the_run_naming_it(champion):
    project, clean = champion
    frame = _grown(clean)
    message = _stopped(project, clean, frame[frame["region"] != "west"])
    assert "region=west had" in message and "has 0 now" in message


def test_flips_aimed_at_one_group_let_through_on_purpose_are_refused_on_the_pinned_set(champion):
    """Every defaulter of one home type relabelled good. With the label check loosened on purpose
    (recorded with the run), the challenger trained on the poison beats the champion on its own
    poisoned holdout, and loses on the champion's holdout as version 1's data labelled it."""
    project, clean = champion
    frame = _grown(clean, 3000)
    aimed = (frame["home_ownership"] == "RENT") & (frame["defaulted"] == 1)
    frame.loc[aimed, "defaulted"] = 0
    message = _stopped(project, clean, frame, "validation.previous.max_label_change_share=1.0",
                       "validation.previous.max_class_share_change=1.0")
    assert "1 of 9 gates failed: pinned set: roc_auc difference (CI low)" in message, message
    assert "on version 1's holdout as its data version labelled it" in message
    assert "worse than the champion" in message and "on the new holdout: " in message
    # The loosened check is recorded with the run that loosened it.
    store = project.store()
    runs = store.client.search_runs([store.experiment_id], "tags.`driftline.overrides` LIKE '%max_label_change%'")
    assert len(runs) == 1 and runs[0].data.tags["driftline.outcome"] == "rejected"
    report = Path(store.client.download_artifacts(runs[0].info.run_id, "report.md", str(project.root))).read_text()
    assert "`validation.previous.max_label_change_share=1.0`" in report


def test_a_clean_new_version_is_read_back_from_the_remote_and_passes(champion):
    project, clean = champion
    shutil.rmtree(project.root / ".dvc" / "cache")  # the champion's version must come from the remote
    _new_version(project, _grown(clean))
    try:
        result = project.train(*FAST)
        assert result["status"] == "registered", result
        store = project.store()
        report = store.client.download_artifacts(result["run_id"], "validation/report.md", str(project.root))
        text = Path(report).read_text()
        assert "0 of the 6000 rows present in version 1's data changed their label" in text
        gate = next(g for g in result["gates"] if g["name"].startswith("pinned set"))
        assert gate["passed"] and "version 1's holdout" in gate["detail"]
    finally:
        store = project.store()
        for v in store.client.search_model_versions(f"name='{store.model_name}'"):
            if str(v.version) != "1":
                store.client.delete_model_version(store.model_name, v.version)
        _restore(project, clean)


def test_a_champion_version_gone_from_the_remote_fails_closed_unless_optional(champion, tmp_path):
    project, clean = champion
    store = project.store()
    md5 = store.version_by_alias("champion").tags["driftline.dvc_md5"]
    remote = project.root.parent / f"{project.root.name}-remote"
    moved = tmp_path / "remote-copy"
    shutil.copytree(remote, moved)
    shutil.rmtree(project.root / ".dvc" / "cache", ignore_errors=True)
    for entry in remote.rglob("*"):
        if entry.is_file() and entry.name == md5[2:]:
            entry.unlink()  # the champion's version is gone from the remote
    try:
        message = _stopped(project, clean, _grown(clean, 2500))  # a version no run validated before
        assert "version 1's data could not be read" in message
    finally:
        shutil.rmtree(remote)
        shutil.copytree(moved, remote)
