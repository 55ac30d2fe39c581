"""Rollout analysis on hand-made windows of the prediction and feedback logs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from driftline.config import Shadow
from driftline.core import rollout
from driftline.core.rollout import analyze, psi

CFG = Shadow(min_requests=100, min_labels=50)


def _rows(variant: str, n: int, seed: int, score_shift: float = 0.0, errors: int = 0, latency: float = 5.0,
          start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = np.clip(rng.beta(2, 5, n) + score_shift, 0, 1)
    return pd.DataFrame({
        "request_id": [f"{variant}-{start + i}" for i in range(n)], "variant": variant,
        "status": ["error"] * errors + ["ok"] * (n - errors), "latency_ms": rng.normal(latency, 0.5, n),
        "score": score, "prediction": (score >= 0.3).astype(int)})


def _feedback(rows: pd.DataFrame, correct_share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    right = rng.random(len(rows)) < correct_share
    labels = np.where(right, rows["prediction"], 1 - rows["prediction"])
    return pd.DataFrame({"request_id": rows["request_id"], "label": [json.dumps(int(v)) for v in labels]})


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.beta(2, 5, 5000), rng.beta(2, 5, 5000)
    assert psi(a, b) < 0.02
    assert psi(a, np.clip(b + 0.3, 0, 1)) > 0.5


def test_not_ready_until_enough_challenger_traffic():
    window = pd.concat([_rows("champion", 500, 1), _rows("challenger", 40, 2)])
    result = analyze(window, pd.DataFrame(), CFG)
    assert not result.ready and not result.passed and result.counts["challenger"] == 40


def test_an_equal_challenger_passes_every_check():
    champ, chal = _rows("champion", 600, 1), _rows("challenger", 600, 2)
    feedback = pd.concat([_feedback(champ, 0.8, 3), _feedback(chal, 0.8, 4)])
    result = analyze(pd.concat([champ, chal]), feedback, CFG)
    assert result.passed, result.summary()
    assert {c.name for c in result.checks} == {"errors", "latency", "score distribution", "accuracy"}


def test_each_live_signal_can_fail_on_its_own():
    champ = _rows("champion", 600, 1)
    cases = {
        "errors": _rows("challenger", 600, 2, errors=30),
        "latency": _rows("challenger", 600, 2, latency=50),
        "score distribution": _rows("challenger", 600, 2, score_shift=0.3),
    }
    for name, chal in cases.items():
        result = analyze(pd.concat([champ, chal]), pd.DataFrame(), CFG)
        assert [c.name for c in result.checks if not c.passed] == [name], result.summary()
    chal = _rows("challenger", 600, 2)
    feedback = pd.concat([_feedback(champ, 0.85, 3), _feedback(chal, 0.6, 4)])
    result = analyze(pd.concat([champ, chal]), feedback, CFG)
    assert [c.name for c in result.checks if not c.passed] == ["accuracy"]


def test_shadow_judges_agreement_on_mirrored_requests():
    champ = _rows("champion", 300, 1)
    mirrored = champ.assign(variant="shadow")
    assert analyze(pd.concat([champ, mirrored]), pd.DataFrame(), CFG, shadow=True).passed
    flipped = mirrored.assign(prediction=1 - mirrored["prediction"])
    result = analyze(pd.concat([champ, flipped]), pd.DataFrame(), CFG, shadow=True)
    assert "agreement" in [c.name for c in result.checks if not c.passed]


def _answer(version: str, label: int, score: float) -> tuple[int, dict]:
    return 200, {"model_version": version, "predictions": [label], "probabilities": [{"0": 1 - score, "1": score}]}


def test_smoke_passes_when_the_live_answers_equal_the_offline_ones():
    answers = [_answer("4", 1, 0.7), _answer("4", 0, 0.2)]
    result = rollout.judge_smoke("4", answers, [1, 0], [0.7, 0.2])
    assert result.passed, result.summary()
    assert "2/2 answers equal" in result.summary()


@pytest.mark.parametrize(("answers", "needle"), [
    ([_answer("4", 1, 0.7), (500, {"detail": "boom"})], "1/2 smoke requests answered 200; first failure: HTTP 500"),
    ([_answer("3", 1, 0.7), _answer("4", 0, 0.2)], "answered by 3, expected 4"),
    ([_answer("4", 1, 0.7), _answer("4", 0, 0.25)], "1/2 answers equal"),
    ([_answer("4", 0, 0.7), _answer("4", 0, 0.2)], "1/2 answers equal"),
])
def test_smoke_fails_on_errors_wrong_versions_and_different_answers(answers, needle):
    result = rollout.judge_smoke("4", answers, [1, 0], [0.7, 0.2])
    assert not result.passed and needle in result.summary()


def test_the_psi_sampling_floor_matches_simulation():
    rng = np.random.default_rng(0)
    sims = [psi(rng.beta(2, 5, 400), rng.beta(2, 5, 100)) for _ in range(400)]
    assert np.mean(sims) == pytest.approx(rollout.psi_sampling_floor(400, 100), rel=0.25)


def test_shadow_pairs_each_record_with_its_own_mirror_in_multi_record_requests():
    champ = _rows("champion", 1200, 1)
    # 120 requests of 10 records each: every record has its own mirror, and they all agree.
    champ = champ.assign(request_id=[f"r{i // 10}" for i in range(1200)], record_index=[i % 10 for i in range(1200)],
                         prediction=[i % 2 for i in range(1200)])
    result = analyze(pd.concat([champ, champ.assign(variant="shadow")]), pd.DataFrame(), CFG, shadow=True)
    agreement = next(c for c in result.checks if c.name == "agreement")
    assert agreement.passed and "100.0% on 1200 mirrored requests" in agreement.detail, agreement.detail


# --- the unit of evidence is the request -------------------------------------------------------------------


def _request(variant: str, rows: int, status: str = "ok", score: float = 0.2, request_id: str = "big") -> pd.DataFrame:
    """One request of `rows` records, as the server logs it."""
    return pd.DataFrame({"request_id": request_id, "record_index": range(rows), "variant": variant, "status": status,
                         "latency_ms": 5.0, "score": score, "prediction": int(score >= 0.3)})


def test_min_requests_and_the_error_rate_count_requests_not_rows():
    """One failed request of 2,000 records is one failed request: it neither fills the step (40
    requests stay 41) nor, beside 150 answered ones, breaks the 1% error rate (2,000 error rows of
    2,150 did)."""
    champ = _rows("champion", 600, 1)
    few = analyze(pd.concat([champ, _rows("challenger", 40, 2), _request("challenger", 2000, "error")]),
                  pd.DataFrame(), CFG)
    assert not few.ready and few.counts["challenger"] == 41
    enough = analyze(pd.concat([champ, _rows("challenger", 150, 2), _request("challenger", 2000, "error")]),
                     pd.DataFrame(), CFG)
    errors = next(c for c in enough.checks if c.name == "errors")
    assert enough.counts["challenger"] == 151 and errors.passed, enough.summary()
    assert "challenger error rate 0.66%" in errors.detail
    two = analyze(pd.concat([champ, _rows("challenger", 150, 2), _request("challenger", 10, "error", request_id="a"),
                             _request("challenger", 10, "error", request_id="b")]), pd.DataFrame(), CFG)
    assert "challenger error rate 1.32%" in next(c.detail for c in two.checks if c.name == "errors")


def test_rows_no_model_answered_are_counted_apart_and_judge_nothing():
    """The challenger failed on a request and the champion failed on the same rows (the server logs
    the challenger's rows as input_error): not an error of the challenger, not a request it was
    judged on; the summary says how many there were."""
    champ, chal = _rows("champion", 600, 1), _rows("challenger", 600, 2)
    result = analyze(pd.concat([champ, chal, _request("challenger", 5000, rollout.INPUT_ERROR),
                                _request("champion", 5000, rollout.ERROR)]), pd.DataFrame(), CFG)
    assert result.passed, result.summary()
    assert result.counts == {"champion": 601, "challenger": 600, "input_errors": 1}
    assert "1 challenger requests not judged (the champion did not answer them either)" in result.summary()
    unanswered = [_request("challenger", 5, rollout.INPUT_ERROR, request_id=f"bad-{i}") for i in range(100)]
    alone = analyze(pd.concat([champ, _rows("challenger", 40, 2), *unanswered]), pd.DataFrame(), CFG)
    assert not alone.ready and alone.counts["challenger"] == 40  # they do not fill a step either


def test_one_big_request_weighs_at_most_a_few_rows_in_the_score_comparison():
    champ, chal = _rows("champion", 600, 1), _rows("challenger", 200, 2)
    pile = _request("challenger", 3000, score=0.99)
    result = analyze(pd.concat([champ, chal, pile]), pd.DataFrame(), CFG)
    score = next(c for c in result.checks if c.name == "score distribution")
    assert score.passed, score.detail
    # Uncapped, the one request is the distribution: the check would have failed on it.
    whole = np.r_[chal["score"].to_numpy(), pile["score"].to_numpy()]
    assert psi(champ["score"].to_numpy(), whole) > 1.0
    assert len(rollout.capped(pile)) == rollout.ROWS_PER_REQUEST and rollout.capped(pile)["record_index"].max() == 9


def test_the_summary_names_the_top_clients_share_of_the_window_when_the_log_has_client_keys():
    champ, chal = _rows("champion", 600, 1), _rows("challenger", 600, 2)
    plain = analyze(pd.concat([champ, chal]), pd.DataFrame(), CFG)
    assert plain.top_client is None and "top client" not in plain.summary()
    keyed = pd.concat([champ.assign(client_key=[f"c{i}" for i in range(600)]),
                       chal.assign(client_key=["one"] * 360 + [f"d{i}" for i in range(240)])])
    result = analyze(keyed, pd.DataFrame(), CFG)
    assert result.top_client == pytest.approx(0.3) and result.passed
    assert result.summary().endswith("(600 challenger and 600 champion requests; the top client sent 30% of the "
                                     "window's requests)"), result.summary()
    waiting = analyze(keyed.head(650), pd.DataFrame(), CFG)
    assert not waiting.ready and waiting.top_client is not None


# --- the plan and the verdict ------------------------------------------------------------------------------


def test_step_names_say_the_weight_of_a_canary_and_the_smoke_test_of_blue_green():
    assert [rollout.step_name(m, w) for m, w in [("canary", 0.1), ("canary", 1.0), ("shadow", 0.0),
                                                ("blue-green", 0.0)]] == ["canary 10%", "canary 100%", "shadow",
                                                                          "smoke test"]


def test_the_promotion_verdict_names_the_previous_champion_when_there_was_one():
    assert rollout.promotion_verdict("3", "2") == "promoted version 3 to @champion; @previous is version 2"
    assert rollout.promotion_verdict("1", None) == "promoted version 1 to @champion"


def test_the_step_picture_shows_live_accuracy_with_its_interval_and_the_drop_bound():
    from driftline.core import ops_plots

    champ, chal = _rows("champion", 600, 1), _rows("challenger", 600, 2)
    feedback = pd.concat([_feedback(champ, 0.85, 3), _feedback(chal, 0.6, 4)])
    result = analyze(pd.concat([champ, chal]), feedback, CFG)
    live = result.accuracy
    assert live.champion_labels == live.challenger_labels == 600 and live.drop_bound > CFG.max_accuracy_drop
    fig = ops_plots.rollout_step("canary 50%", champ, chal, result.checks, live)
    panel = fig.axes[3]
    assert [round(b.get_height(), 6) for b in panel.patches] == [round(live.champion, 6), round(live.challenger, 6)]
    assert f"drop >= {live.drop_bound:+.3f} at 95% (at most 0.05)" in panel.get_title()
    assert "accuracy FAILED" in fig._suptitle.get_text()
    few = analyze(pd.concat([champ, chal]), pd.concat([_feedback(champ, 0.8, 3).head(30),
                                                       _feedback(chal, 0.8, 4).head(30)]), CFG)
    assert few.accuracy.drop_bound is None and "accuracy" not in {c.name for c in few.checks}
    fig = ops_plots.rollout_step("canary 50%", champ, chal, few.checks, few.accuracy)
    assert "not judged (needs 50 labels a side)" in fig.axes[3].get_title()


def test_the_score_panel_keeps_the_champion_readable_beside_a_challenger_piled_up_at_one_score():
    """A broken challenger answering 0.5 for every request: both models' distributions still fill
    the panel's height (as densities, the spike was 30 times the champion's tallest bar)."""
    from driftline.core import ops_plots

    champ, chal = _rows("champion", 600, 1), _rows("challenger", 600, 2)
    chal["score"] = 0.5
    panel = ops_plots.rollout_step("canary 50%", champ, chal, [], None).axes[2]
    low, high = panel.get_ylim()
    drawn = {line.get_label().split(" ")[0]: line for line in panel.get_lines()}
    assert set(drawn) == {"champion", "challenger"}
    for name, line in drawn.items():
        y = line.get_ydata()
        assert (max(y) - min(y)) / (high - low) > 0.9, name
    champion_x = drawn["champion"].get_xdata()
    assert min(champion_x) < 0.1 and max(champion_x) > 0.6  # its spread is drawn, not a point
    assert drawn["challenger"].get_xdata().min() == drawn["challenger"].get_xdata().max() == 0.5
    assert drawn["challenger"].get_label() == "challenger (600; 100% at 0.5)"
    assert drawn["champion"].get_label() == "champion (600)"
