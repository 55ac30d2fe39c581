"""A new data version against the champion's: each poison stopped by the check that names it (label
flips at random, flips aimed at one group, near-copies, a vanished group), a clean new version
with genuinely new rows passing every check, and near-copies kept on one side of the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.core import demo_data, frames, gates, pinned, training, versions


@pytest.fixture
def old() -> pd.DataFrame:
    return demo_data.generate(4000, 11)


def _grown(old: pd.DataFrame, rows: int = 1500) -> pd.DataFrame:
    """The same rows plus genuinely new ones: what a clean new version looks like."""
    return pd.concat([old, demo_data.generate(rows, 12)], ignore_index=True)


def _checks(old, new, p) -> dict[str, versions.Check]:
    return {c.name: c for c in [*versions.against(old, new, p, "1"), versions.near_duplicates(new, p)]}


def test_a_clean_new_version_with_new_rows_passes_every_check(old, params):
    checks = _checks(old, _grown(old), params)
    assert all(c.passed for c in checks.values()), [c.detail for c in checks.values() if not c.passed]
    assert "0 of the 4000 rows present in version 1's data changed their label" in \
        checks["versions: labels of rows in both versions"].detail


def test_random_label_flips_are_named_with_their_count_and_classes(old, params):
    new = _grown(old)
    flipped = np.random.default_rng(0).random(len(old)) < 0.10
    new.loc[np.flatnonzero(flipped), "defaulted"] = 1 - new.loc[np.flatnonzero(flipped), "defaulted"]
    check = _checks(old, new, params)["versions: labels of rows in both versions"]
    assert not check.passed
    assert f"{flipped.sum()} of the 4000 rows present in version 1's data changed their label" in check.detail
    assert "0 → 1: " in check.detail and "1 → 0: " in check.detail


def test_flips_aimed_at_one_group_name_the_group(old, params):
    new = _grown(old)
    aimed = (new.index < len(old)) & (new["home_ownership"] == "RENT") & (new["defaulted"] == 1)
    new.loc[aimed, "defaulted"] = 0
    check = _checks(old, new, params)["versions: labels of rows in both versions"]
    assert not check.passed and f"1 → 0: {aimed.sum()}" in check.detail
    assert "most in home_ownership=RENT" in check.detail


def test_near_copies_are_named_and_an_exact_duplicate_check_misses_them(old, params):
    copies = old.sample(120, random_state=1)
    nudged = pd.concat([copies.assign(loan_amount=copies["loan_amount"] + 0.5 * i,
                                      region=copies["region"].str.upper()) for i in range(1, 6)])
    new = pd.concat([old, nudged], ignore_index=True)
    assert not new.duplicated().any()  # not one exact duplicate
    check = _checks(old, new, params)["versions: near-duplicate rows"]
    assert not check.passed and "600 copies, the largest group 6 rows" in check.detail


def test_a_vanished_group_is_named_by_the_categories_check(old, params):
    new = _grown(old)
    new = new[new["loan_purpose"] != "medical"]
    check = _checks(old, new, params)["versions: categories"]
    assert not check.passed and "loan_purpose=medical had" in check.detail and "has 0 now" in check.detail


def test_class_balance_moved_beyond_its_limit_is_named(old, params):
    new = pd.concat([old, old[old["defaulted"] == 1].assign(age=lambda d: d["age"] + 1)], ignore_index=True)
    check = _checks(old, new, params)["versions: class balance"]
    assert not check.passed and "1: " in check.detail


def test_a_champion_version_that_cannot_be_read_fails_unless_optional(old, params, make_params):
    (check,) = versions.against("object abc is neither in the DVC cache nor on the remote", old, params, "3")
    assert not check.passed and "version 3's data could not be read: object abc" in check.detail
    lax = make_params("validation.previous.required=false")
    (check,) = versions.against("gone", old, lax, "3")
    assert check.passed and "not compared" in check.detail


def test_near_copies_never_straddle_the_split_and_other_rows_stay_put(old, params):
    copies = old.sample(300, random_state=2)
    nudged = pd.concat([copies.assign(credit_score=copies["credit_score"] + 0.01 * i) for i in range(1, 4)])
    new = pd.concat([old, nudged], ignore_index=True)
    parts = training.split(new, params)
    keys = versions.near_keys(new, versions.identity_columns(params), 3)
    side = pd.Series(new.index.isin(parts.holdout.index), index=new.index)
    per_key = side.groupby(keys).nunique()
    assert (per_key == 1).all()  # every group of copies on one side
    alone = ~pd.Series(keys).duplicated(keep=False).to_numpy()
    before = training.split(old, params)
    moved = old.index[alone[: len(old)]].isin(before.holdout.index) != side.iloc[: len(old)][alone[: len(old)]]
    assert not moved.any()  # rows without a near-copy keep their side


def test_the_champion_is_never_scored_as_unseen_on_a_row_it_trained_on(old, params):
    """Rows the champion's split grouped with their near-copies and trained on, whose own hash says
    holdout: once the copies are gone from the new version, the hash alone calls them unseen. The
    keys read from the champion's data version take them out again."""
    copies = old.sample(1500, random_state=3).assign(loan_amount=lambda d: d["loan_amount"] + 0.01)
    champion_data = pd.concat([old, copies], ignore_index=True)
    parts = training.split(champion_data, params)
    spec = training.split_spec(params, parts)
    columns = versions.identity_columns(params)
    trained = np.isin(versions.row_keys(old, columns), versions.row_keys(parts.train, columns))
    unseen = training.unseen_by(old, spec)  # the new version: the originals, without the copies
    hole = unseen & trained
    assert hole.sum() > 10  # the case exists: the hash alone would score the champion on them
    seen = pinned.from_champion_data(champion_data, spec, spec, parts.train, params).seen
    fixed = unseen & ~np.isin(versions.near_keys(old, columns, 3), seen)
    assert not (fixed & trained).any()
    assert fixed.sum() > 0.9 * (unseen & ~trained).sum()  # and the rows it never saw stay


def test_the_pinned_set_is_the_champions_holdout_that_neither_model_saw(old, params):
    champion_parts = training.split(old, params)
    spec = training.split_spec(params, champion_parts)
    new = _grown(old)
    parts = training.split(new, params)
    data = pinned.from_champion_data(old, spec, training.split_spec(params, parts), parts.train, params)
    assert set(data.holdout.index) <= set(champion_parts.holdout.index)
    assert len(data.holdout) > 0.9 * len(champion_parts.holdout)
    trained = versions.near_keys(parts.train, versions.identity_columns(params), 3)
    assert not np.isin(versions.near_keys(data.holdout, versions.identity_columns(params), 3), trained).any()
    assert set(data.groups["gender"]) == {"female", "male"}  # the groups the champion's holdout could count


def test_a_challenger_trained_on_aimed_flips_loses_on_the_pinned_set_and_is_refused(old, params, make_params):
    p = make_params("training.estimator.max_iter=40", "evaluation.comparison.bootstrap_samples=200")
    champion_parts = training.split(old, p)
    champion = training.train(champion_parts.train, p)
    new = _grown(old, 3000)
    new.loc[new["defaulted"] == 1, "defaulted"] = np.where(new.loc[new["defaulted"] == 1, "credit_score"] < 650, 0, 1)
    parts = training.split(new, p)
    challenger = training.train(parts.train, p)
    data = pinned.from_champion_data(old, training.split_spec(p, champion_parts), training.split_spec(p, parts),
                                     parts.train, p)
    score = pinned.score(challenger, champion, data.holdout, p, "version 1's holdout")
    (gate,) = gates.pinned_gate(score, None)
    assert not gate.passed and gate.name == "pinned set: roc_auc difference (CI low)"
    assert "on version 1's holdout (" in gate.detail and "worse than the champion" in gate.detail
    # On its own poisoned holdout, the challenger does not look worse.
    y = frames.target(parts.holdout, p.data)
    x = frames.features(parts.holdout, p.data)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, challenger.predict_proba(x)[:, 1]) > roc_auc_score(y, champion.predict_proba(x)[:, 1])


def test_a_fairness_group_the_champion_counted_that_cannot_be_counted_fails_the_gate(params, make_params):
    from driftline.core import evaluation

    p = make_params("training.estimator.max_iter=20")
    df = demo_data.generate(4000, 5)
    parts = training.split(df, p)
    model = training.train(parts.train, p)
    holdout = parts.holdout[parts.holdout["gender"] != "female"]  # the group is gone from the new data
    ev = evaluation.evaluate(model, parts.train, holdout, p)
    fair = gates.fairness_gates(ev.slices, {"gender": {"female": 380, "male": 400}})
    assert not fair[0].passed and "group female was counted for the champion (380 rows" in fair[0].detail
    assert gates.fairness_gates(ev.slices, None)[0].detail  # without the champion's groups: as before


def test_a_drift_retraining_reports_moved_shares_without_stopping_but_not_changed_labels(old, params):
    shifted = pd.concat([old, demo_data.generate(2500, 4, "covariate_shift")], ignore_index=True)
    plain = {c.name: c for c in versions.against(old, shifted, params, "1")}
    drift = {c.name: c for c in versions.against(old, shifted, params, "1", drift_expected=True)}
    assert not plain["versions: class balance"].passed
    assert drift["versions: class balance"].passed and "not blocking: this run retrains because of drift" in \
        drift["versions: class balance"].detail
    flipped = shifted.copy()
    flipped.loc[: len(old) // 5, "defaulted"] = 1 - flipped.loc[: len(old) // 5, "defaulted"]
    labels = {c.name: c for c in versions.against(old, flipped, params, "1", drift_expected=True)}
    assert not labels["versions: labels of rows in both versions"].passed


def test_a_table_of_few_coarse_columns_repeating_itself_by_chance_passes():
    """Three columns with 180, 6 and 3 rounded values over 3,000 rows repeat 19% of rows honestly:
    that is their chance level, and only copies beyond it count."""
    from driftline.config import parse_params

    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"size_m2": rng.uniform(20, 200, n), "rooms": rng.integers(1, 7, n).astype(float),
                          "city": rng.choice(["lyon", "paris", "nantes"], n)})
    frame["price"] = 3000 * frame["size_m2"] + rng.normal(0, 20_000, n)
    features = [{"name": "size_m2", "type": "numeric"}, {"name": "rooms", "type": "numeric"},
                {"name": "city", "type": "categorical"}]
    data = {"path": "data/houses.csv", "target": "price", "task": "regression", "features": features}
    p = parse_params({"data": data, "evaluation": {"primary_metric": "r2"}, "registry": {"model_name": "houses"}})
    honest = versions.near_duplicates(frame, p)
    # Each column shuffled within blocks chosen by row key (one block here), rows in key order: the
    # level of one such shuffle of the rounded values (a mean of 20.9% over 200 shuffles, sd 0.5%).
    assert honest.passed and "beyond the 20.67% the columns repeat by chance" in honest.detail
    reordered = versions.near_duplicates(frame.sample(frac=1, random_state=3), p)
    assert reordered.detail == honest.detail  # chosen by row key, not position
    copied = pd.concat([frame, *[frame.head(300).assign(size_m2=frame["size_m2"].head(300) + 0.01 * i)
                                 for i in range(1, 3)]], ignore_index=True)
    assert not versions.near_duplicates(copied, p).passed
