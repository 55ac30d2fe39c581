"""A seeded, deterministic loan-default table, with named scenarios for drift and breakage.

The target depends on the features through a known logistic model, so tests can state
directional expectations (more debt, more default) and invariances (the application
channel does not matter; the applicant's gender is not a feature at all).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SCENARIOS = ("baseline", "covariate_shift", "concept_drift", "new_category", "broken_schema", "clear_cut",
             "borderline")
# Covariate shifts by selection on the true default risk (the logistic model below), so the labels
# follow the features exactly as before (no concept change): applicants whose risk is clear-cut
# (a model trained on the baseline is sure about them, and right), and applicants near the demo's
# decision threshold of 0.3 (where it is unsure, and wrong far more often).
SELECTED = {"clear_cut": lambda risk: (risk < 0.04) | (risk > 0.7),
            "borderline": lambda risk: (risk > 0.22) & (risk < 0.42)}

PURPOSES = ["debt_consolidation", "credit_card", "home_improvement", "car", "medical",
            "small_business", "other"]
HOME = ["RENT", "MORTGAGE", "OWN", "OTHER"]
REGIONS = ["north", "south", "east", "west"]
CHANNELS = ["web", "branch", "phone", "partner"]


def _with_missing(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    values = values.astype(float if values.dtype.kind in "fi" else object)
    values[rng.random(len(values)) < rate] = np.nan if values.dtype.kind == "f" else None
    return values


def generate(n_rows: int = 50_000, seed: int = 7, scenario: str = "baseline") -> pd.DataFrame:
    """Return `n_rows` loan applications with a `defaulted` target (about 18% positive)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if scenario in SELECTED:
        return selected(n_rows, seed, SELECTED[scenario])
    return _generate(n_rows, seed, scenario)[0]


def risk(n_rows: int, seed: int, scenario: str = "baseline") -> np.ndarray:
    """The true default probability of each row `generate` gives for the same arguments."""
    return _generate(n_rows, seed, scenario)[1]


def selected(n_rows: int, seed: int, keep) -> pd.DataFrame:
    """`n_rows` baseline rows whose true risk `keep` accepts, drawn from ever larger seeded batches."""
    size = 4 * n_rows
    while True:
        frame, p = _generate(size, seed, "baseline")
        chosen = np.flatnonzero(keep(p))
        if len(chosen) >= n_rows:
            return frame.iloc[chosen[:n_rows]].reset_index(drop=True)
        size *= 4


def _generate(n_rows: int, seed: int, scenario: str) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = n_rows
    shift = scenario == "covariate_shift"

    start = np.datetime64("2024-01-01T00:00:00") if scenario == "baseline" else np.datetime64("2026-01-01")
    seconds = np.sort(rng.integers(0, 730 * 24 * 3600, n))
    when = start + seconds.astype("timedelta64[s]")

    age = np.clip(rng.normal(41 if not shift else 33, 12, n), 18, 85).round()
    income = np.exp(rng.normal(10.9 if not shift else 10.5, 0.55, n)).round(-2)
    employment = np.clip(rng.gamma(2.0, 3.0, n), 0, 45).round(1)
    credit = np.clip(rng.normal(690 if not shift else 640, 60, n), 300, 850).round()
    loan = np.clip(np.exp(rng.normal(9.4 if not shift else 9.8, 0.6, n)), 1000, 100_000).round(-2)
    term = rng.choice([12, 24, 36, 60], n, p=[0.1, 0.25, 0.4, 0.25])
    dti = np.clip(rng.beta(2.2, 6.0, n) * (1.0 if not shift else 1.4), 0, 1.2).round(3)
    rate = np.clip(0.32 - (credit - 300) / 550 * 0.25 + rng.normal(0, 0.02, n), 0.03, 0.36).round(4)
    accounts = rng.poisson(8 if not shift else 11, n)
    delinq = rng.poisson(0.3 if not shift else 0.6, n)

    home = rng.choice(HOME, n, p=[0.38, 0.4, 0.19, 0.03])
    purpose = rng.choice(PURPOSES, n, p=[0.35, 0.2, 0.12, 0.1, 0.08, 0.05, 0.1])
    region = rng.choice(REGIONS, n)
    channel = rng.choice(CHANNELS, n, p=[0.55, 0.2, 0.15, 0.1])
    gender = rng.choice(["female", "male", "nonbinary"], n, p=[0.48, 0.49, 0.03])
    if scenario == "new_category":
        purpose = np.where(rng.random(n) < 0.15, "crypto", purpose)
        home = np.where(rng.random(n) < 0.1, "COOPERATIVE", home)

    z = -1.9 + 1.5 * (
        3.2 * (dti - 0.27)
        - 0.011 * (credit - 690)
        + 0.35 * np.log(loan / income * 10)
        + 9.0 * (rate - 0.18)
        + 0.45 * delinq
        - 0.03 * employment
        - 0.012 * (age - 41)
        + 0.2 * (term == 60)
        + np.select([purpose == "small_business", purpose == "medical", purpose == "credit_card"],
                    [0.6, 0.3, -0.15], 0.0)
        + np.select([home == "RENT", home == "OWN"], [0.2, -0.15], 0.0)
    )
    if scenario == "concept_drift":
        # Same inputs, new world: debt and region now matter in ways the model never saw, strongly enough
        # that a champion trained before it loses ~10 points of accuracy (0.80 -> 0.70), past the
        # monitor's default tolerance of 5 points (at 0.9 and 6.0 it lost 4, which the monitor rightly held).
        z = z + 1.8 * (region == "south") - 1.8 * (region == "north") - 12.0 * (dti - 0.27)
    probability = 1 / (1 + np.exp(-z))
    defaulted = (rng.random(n) < probability).astype(np.int64)

    frame = pd.DataFrame(
        {
            "application_date": pd.to_datetime(when).as_unit("s"),
            "age": age.astype(np.int64),
            "annual_income": _with_missing(rng, income, 0.03),
            "employment_years": _with_missing(rng, employment, 0.04),
            "credit_score": _with_missing(rng, credit, 0.05),
            "loan_amount": loan,
            "term_months": term.astype(np.int64),
            "interest_rate": rate,
            "debt_to_income": _with_missing(rng, dti, 0.02),
            "open_accounts": accounts.astype(np.int64),
            "delinquencies_2y": delinq.astype(np.int64),
            "home_ownership": home.astype(object),
            "loan_purpose": _with_missing(rng, purpose, 0.02),
            "region": region.astype(object),
            "application_channel": channel.astype(object),
            "gender": gender.astype(object),
            "defaulted": defaulted,
        }
    )
    for col in ("home_ownership", "loan_purpose", "region", "application_channel", "gender"):
        frame[col] = frame[col].astype("string")
    if scenario == "broken_schema":
        # What an upstream change looks like: a renamed column and money as text.
        frame = frame.rename(columns={"credit_score": "fico_score"})
        frame["annual_income"] = frame["annual_income"].map(
            lambda v: None if pd.isna(v) else f"${v:,.0f}"
        ).astype("string")
    return frame, probability
