"""Request ids the server can recognise as its own, and the labels /feedback takes for them."""

from __future__ import annotations

import os
import stat
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from driftline.serving.ids import RequestIds, server_key
from driftline.serving.intake import BadInput
from driftline.serving.labels import NotIssued, check_label, feedback_rows
from driftline.serving.loader import Loaded

KEY = b"k" * 32


def test_an_issued_id_verifies_with_its_record_count_and_nothing_else_does():
    ids = RequestIds(KEY, 3600)
    rid = ids.issue(3)
    assert len(rid) == 56 and ids.verify(rid).records == 3
    assert ids.issue(3) != rid  # random part
    flipped = rid[:20] + ("0" if rid[20] != "0" else "1") + rid[21:]  # the record count or time changed
    assert ids.verify(flipped) is None
    assert RequestIds(b"x" * 32, 3600).verify(rid) is None  # another key
    assert ids.verify(ids.issue(1, at=time.time() - 7200)) is None  # too old
    assert ids.verify(ids.issue(1, at=time.time() + 3600)) is None  # from the future, beyond clock skew
    for junk in ("", "zz" * 28, rid + "00", "\udfff" * 56):
        assert ids.verify(junk) is None


def test_the_server_key_is_made_once_private_and_then_reused(tmp_path):
    first = server_key(None, tmp_path / "state")
    path = tmp_path / "state" / "request-id.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert server_key(None, tmp_path / "state") == first  # a restart, or a replica sharing the directory
    assert server_key("configured-key-16+", tmp_path / "state") == b"configured-key-16+"
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        server_key(None, tmp_path / "state")


def test_an_empty_key_file_an_earlier_release_left_is_replaced_and_no_write_leaves_one(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "request-id.key").write_text("")  # a disk that filled up mid-write, before the atomic write
    os.chmod(state / "request-id.key", 0o600)
    key = server_key(None, state)
    assert len(key) == 64 and (state / "request-id.key").read_text().strip().encode() == key
    assert sorted(p.name for p in state.iterdir() if not p.name.startswith("request-id.key.broken")) == \
        ["request-id.key"]  # nothing written aside is left behind


def test_the_canary_draw_is_keyed_stable_and_uniform():
    ids, other = RequestIds(KEY, 3600), RequestIds(b"x" * 32, 3600)
    assert ids.share("abc") == ids.share("abc") == RequestIds(KEY, 60).share("abc")  # replicas with one key agree
    shares = [ids.share(f"req-{i}") for i in range(20_000)]
    assert all(0 <= s < 1 for s in shares)
    assert abs(sum(s < 0.1 for s in shares) / len(shares) - 0.1) < 0.01
    # Without the key the arm cannot be told from the id: another key splits the same ids otherwise.
    theirs = [other.share(f"req-{i}") < 0.1 for i in range(20_000)]
    agree = sum(a == (s < 0.1) for a, s in zip(theirs, shares, strict=True)) / len(shares)
    assert agree < 0.85, agree  # independent draws agree on 0.9**2 + 0.1**2 = 82% of ids


def _loaded(model, classification: bool) -> Loaded:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    return Loaded("1", model.fit(x, [0, 0, 1, 1]), {"a": "double"}, x.head(1), classification)


def test_labels_are_the_models_classes_or_finite_numbers():
    classifier = [_loaded(LogisticRegression(), True)]
    assert [check_label(v, classifier) for v in (1, "0", 1.0)] == [1, 0, 1]
    assert type(check_label(1, classifier)) is int
    for bad in (7, "yes", True, 0.5, None, [1], {"a": 1}, float("nan")):
        with pytest.raises(BadInput):
            check_label(bad, classifier)
    regressor = [_loaded(LinearRegression(), False)]
    assert check_label(3, regressor) == 3.0 and check_label(-0.25, regressor) == -0.25
    for bad in (float("inf"), float("nan"), 10**400, "3", True, None):
        with pytest.raises(BadInput, match="finite number"):
            check_label(bad, regressor)


def test_feedback_rows_name_a_served_row_and_a_body_is_taken_whole_or_not_at_all():
    ids, models = RequestIds(KEY, 3600), [_loaded(LogisticRegression(), True)]
    one, three = ids.issue(1), ids.issue(3)
    rows = feedback_rows([{"request_id": one, "label": 1}, {"request_id": three, "index": 2, "label": 0}], ids,
                         models, 10)
    assert [(r["request_id"], r["record_index"], r["label"]) for r in rows] == [(one, 0, "1"), (three, 2, "0")]
    assert rows[0]["timestamp"] == rows[1]["timestamp"]  # the server's clock
    with pytest.raises(NotIssued, match="no index 3"):
        feedback_rows([{"request_id": one, "label": 1}, {"request_id": three, "index": 3, "label": 0}], ids, models, 10)
    with pytest.raises(BadInput, match="say which with 'index'"):
        feedback_rows({"request_id": three, "label": 0}, ids, models, 10)
    with pytest.raises(BadInput, match="'index' must be an integer"):
        feedback_rows({"request_id": three, "index": True, "label": 0}, ids, models, 10)
    with pytest.raises(NotIssued, match="was not issued"):
        feedback_rows({"request_id": "ab" * 28, "label": 0}, ids, models, 10)
    with pytest.raises(BadInput, match="needs 'request_id'"):
        feedback_rows({"request_id": 5, "label": 0}, ids, models, 10)
    assert np.isfinite(float(rows[0]["label"]))


def test_by_default_a_label_months_after_the_answer_is_accepted_and_one_past_the_horizon_is_not():
    """Labels of a loan come when it matures: the default age limit is 400 days (the monitor's
    monitoring.label_horizon_days), with every other rule of a label kept."""
    from driftline.config import ServeSettings, load_params
    from tests.unit.conftest import PARAMS_FILE

    hours = ServeSettings().feedback_max_age_hours
    assert hours == load_params(PARAMS_FILE).monitoring.label_horizon_days * 24
    ids, models = RequestIds(KEY, hours * 3600), [_loaded(LogisticRegression(), True)]
    months = ids.issue(2, at=time.time() - 300 * 86_400)
    rows = feedback_rows({"request_id": months, "index": 1, "label": 1}, ids, models, 10)
    assert [(r["request_id"], r["record_index"]) for r in rows] == [(months, 1)]
    with pytest.raises(NotIssued, match="no index 2"):
        feedback_rows({"request_id": months, "index": 2, "label": 1}, ids, models, 10)
    with pytest.raises(NotIssued, match="in the last 9600 h"):
        feedback_rows({"request_id": ids.issue(1, at=time.time() - 401 * 86_400), "label": 1}, ids, models, 10)
