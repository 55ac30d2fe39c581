"""A new data version against the one the champion was trained on, and copies within a version.

A poisoned upstream can relabel rows, repeat rows with a number nudged, or drop a group, and
still pass every check of a version on its own (the labels are valid labels, the copies are not
exact duplicates, the remaining groups are fair). These checks compare with what came before:
rows present in both versions (matched on everything but the target, as the hash split identifies
rows) whose label changed; the class balance and each category's share; categories that vanished
or fell below a count; and rows that are near-copies of one another. Plain functions of the two
tables and the params; the flow reads the old version from DVC.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from driftline.config import Params
from driftline.core.checks import Check

HASH_KEY = "driftline-rowkey"  # 16 bytes: the salt of the row keys (not the split's)


def identity_columns(p: Params) -> list[str]:
    """What identifies a row across versions: every column the split hashes but the target."""
    return [c for c in p.data.columns if c != p.data.target]


def row_keys(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One 64-bit key per row from `columns`, stable across storage (CSV or Parquet, int or float)
    and across versions (a function of the row's values alone)."""
    return _keys(df, columns, None)


def near_keys(df: pd.DataFrame, columns: list[str], digits: int) -> np.ndarray:
    """Row keys after numbers are rounded to `digits` significant digits and text is trimmed and
    lower-cased: two rows with the same key are near-copies."""
    return _keys(df, columns, digits)


def _keys(df: pd.DataFrame, columns: list[str], digits: int | None) -> np.ndarray:
    return _mix(_column_hashes(df, columns, digits))


def _column_hashes(df: pd.DataFrame, columns: list[str], digits: int | None) -> list[np.ndarray]:
    """Each column hashed on its own (pandas' hash_array, salted): no frame is built, since
    building one cost a third of the time on a million rows."""
    out = []
    for name in columns:
        col = df[name]
        if ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col):
            values = col.to_numpy(dtype="float64", na_value=np.nan)
            hashed = pd.util.hash_array(values if digits is None else round_significant(values, digits),
                                        hash_key=HASH_KEY)
        elif ptypes.is_datetime64_any_dtype(col):
            hashed = pd.util.hash_array(col.to_numpy().astype("datetime64[ns]").view("int64"), hash_key=HASH_KEY)
        else:
            # Each distinct text hashed once (a million rows hold a handful of categories): hashing
            # the strings of every row cost most of the key's time.
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            text = [str(u) if digits is None else str(u).strip().lower() for u in uniques]
            hashed = pd.util.hash_array(np.array([*text, "\0missing"], dtype=object), hash_key=HASH_KEY)[codes]
        out.append(hashed)
    return out


def near_column_hashes(df: pd.DataFrame, p: Params) -> list[np.ndarray]:
    """Each identity column's near-copy hashes (rounded numbers, normalised text)."""
    return _column_hashes(df, identity_columns(p), p.validation.near_duplicate_digits)


def mix(hashes: list[np.ndarray]) -> np.ndarray:
    return _mix(hashes)


def _mix(hashes: list[np.ndarray]) -> np.ndarray:
    """The columns' hashes mixed in column order into one key per row."""
    key = np.full(len(hashes[0]) if hashes else 0, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, hashed in enumerate(hashes):
            key = (key ^ hashed) * np.uint64(0x100000001B3) + np.uint64(i + 1)
    return key


def splitmix(keys: np.ndarray, salt: int) -> np.ndarray:
    """64-bit keys mixed with a salt (splitmix64's finalizer): a sample of another purpose, or with
    another seed, picks other rows."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def round_significant(x: np.ndarray, digits: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(x)))
    scale = 10.0 ** (digits - 1 - np.where(np.isfinite(magnitude), magnitude, 0))
    return np.round(x * scale) / scale


def near_duplicated(df: pd.DataFrame, p: Params) -> np.ndarray:
    """True for every row that has a near-copy in `df` (each member of a group, exact copies too)."""
    keys = near_keys(df, identity_columns(p), p.validation.near_duplicate_digits)
    return pd.Series(keys).duplicated(keep=False).to_numpy()


def near_duplicates(df: pd.DataFrame, p: Params) -> Check:
    """Rows that repeat another once numbers are rounded and text normalised, beyond the share that
    the columns' own values repeat by chance. A table of few, coarse columns repeats itself
    honestly (three columns with 180, 6 and 3 rounded values over 3,000 rows: 19% of rows); its
    chance level is measured by shuffling each column on its own, which keeps every column's values
    and breaks the rows. Copies made by a poisoned upstream repeat whole rows, far beyond it. The
    shuffle is within blocks of rows chosen by row key (`chance_copies`), so the level does not
    depend on the rows' order and a table in partitions (training.distributed) finds the same."""
    hashes = _column_hashes(df, identity_columns(p), p.validation.near_duplicate_digits)
    keys = pd.Series(_mix(hashes))
    copies = int(keys.duplicated().sum())
    chance = chance_copies(hashes, keys.to_numpy()) if copies else 0
    largest = int(keys[keys.duplicated(keep=False)].value_counts().iloc[0]) if copies else 1
    return near_check(copies, chance, largest, len(df), p)


# Rows whose columns are shuffled together for the chance level. The blocks are chosen by the rows'
# keys, so a partitioned table forms the same blocks (one shuffle of the column hashes) and finds
# the same level; a block's hashes (136 MB at 17 columns) fit any worker.
BLOCK_ROWS = 1_000_000


def blocks(rows: int) -> int:
    return max(1, -(-rows // BLOCK_ROWS))


def block_chance_keys(hashes: list[np.ndarray], keys: np.ndarray, block: int) -> np.ndarray:
    """The keys of one block's rows (given in any order) once each column's hashes are permuted on
    their own: the rows in key order (rows of one key are the same rows), then a permutation per
    column seeded by the block."""
    order = np.argsort(keys, kind="stable")
    rng = np.random.default_rng([0, block])
    return _mix([h[order][rng.permutation(len(order))] for h in hashes])


def chance_copies(hashes: list[np.ndarray], keys: np.ndarray) -> int:
    """How many rows repeat another once every column is shuffled on its own within its block."""
    n_blocks = blocks(len(keys))
    block_of = keys % np.uint64(n_blocks)
    chance = [block_chance_keys([h[block_of == b] for h in hashes], keys[block_of == b], b) for b in range(n_blocks)]
    return int(pd.Series(np.concatenate(chance)).duplicated().sum())


def near_check(copies: int, chance: int, largest: int, rows: int, p: Params) -> Check:
    limit = p.validation.max_near_duplicate_share
    n = max(rows, 1)
    share, excess = copies / n, (copies - chance) / n
    return Check("versions: near-duplicate rows", excess <= limit,
                 f"{share:.2%} of rows repeat another once numbers are rounded to {p.validation.near_duplicate_digits} "
                 f"significant digits and text normalised ({copies} copies, the largest group {largest} rows), "
                 f"{excess:.2%} beyond the {chance / n:.2%} the columns repeat by chance (at most {limit:.2%})")


def against(old: pd.DataFrame | str, new: pd.DataFrame, p: Params, champion: str,
            drift_expected: bool = False) -> list[Check]:
    """The new version against the champion's data (`old`, or why it could not be read;
    `champion`: its version, for the report). A run that retrains because of drift expects the
    population to have moved: shares that moved are then reported, not held against the data (as
    the distribution check does); changed labels and vanished groups still stop it."""
    name = "versions: the champion's data version"
    if isinstance(old, str):
        required = p.validation.previous.required
        return [Check(name, not required, f"version {champion}'s data could not be read: {old}"
                      + ("" if required else "; not compared (validation.previous.required: false)"))]
    missing = [c for c in [*identity_columns(p), p.data.target] if c not in old.columns]
    if missing:
        return [Check(name, True, f"version {champion}'s data has no {', '.join(missing)}: the versions' rows "
                      "and classes are not compared (a schema change, checked above)")]
    return [label_changes(old, new, p, champion), *balance(old, new, p, champion, drift_expected)]


def label_changes(old: pd.DataFrame, new: pd.DataFrame, p: Params, champion: str) -> Check:
    """Rows present in both versions whose label changed: how many, between which classes, in
    which slices. Rows whose identity repeats within a version are left out (ambiguous)."""
    cfg, target = p.validation.previous, p.data.target
    columns = identity_columns(p)
    old_keys, new_keys = pd.Series(row_keys(old, columns)), pd.Series(row_keys(new, columns))
    old_once = np.flatnonzero(~old_keys.duplicated(keep=False).to_numpy())
    new_once = np.flatnonzero(~new_keys.duplicated(keep=False).to_numpy())
    # A hash join (an index lookup), not a sorted intersection: a third of the time on a million rows.
    where = pd.Index(new_keys.to_numpy()[new_once]).get_indexer(old_keys.to_numpy()[old_once])
    old_rows, new_rows = old_once[where >= 0], new_once[where[where >= 0]]
    name = "versions: labels of rows in both versions"
    if len(old_rows) < cfg.min_matched_rows:
        return Check(name, True, f"{len(old_rows)} rows are in both this version and version {champion}'s data "
                     f"(fewer than {cfg.min_matched_rows}): labels not compared", target)
    before = old[target].to_numpy()[old_rows]
    after = new[target].to_numpy()[new_rows]
    if p.data.task == "regression":
        changed = ~np.isclose(before.astype(float), after.astype(float), rtol=1e-9, atol=0, equal_nan=True)
        how = f"mean change {np.mean(after[changed].astype(float) - before[changed].astype(float)):+.4g}" \
            if changed.any() else ""
    else:
        changed = before.astype(str) != after.astype(str)
        moves = Counter(zip(before[changed].astype(str), after[changed].astype(str), strict=True))
        how = ", ".join(f"{a} → {b}: {n}" for (a, b), n in moves.most_common(4))
    share = float(changed.mean())
    detail = (f"{int(changed.sum())} of the {len(old_rows)} rows present in version {champion}'s data changed their "
              f"label ({share:.2%}; at most {cfg.max_label_change_share:.2%})")
    if changed.any():
        detail += f": {how}; most in {_slices(new.iloc[new_rows], changed, p)}"
    return Check(name, share <= cfg.max_label_change_share, detail, target)


def _slices(rows: pd.DataFrame, changed: np.ndarray, p: Params, top: int = 3) -> str:
    """The slices (a category of a categorical feature or a sensitive attribute) where the changed
    rows concentrate, by how many changed there."""
    cats = [f.name for f in p.data.features if f.type == "categorical"] + list(p.data.sensitive_attributes)
    found = []
    for column in dict.fromkeys(cats):
        values = rows[column].astype(object).fillna("(missing)")
        hit, total = values[changed].value_counts(), values.value_counts()
        found += [(int(n), n / int(total[v]), column, v) for v, n in hit.items()]
    found.sort(key=lambda t: (-t[0], -t[1]))
    return "; ".join(f"{c}={v} ({n} changed, {s:.0%} of its rows)" for n, s, c, v in found[:top])


def balance(old: pd.DataFrame, new: pd.DataFrame, p: Params, champion: str,
            drift_expected: bool = False) -> list[Check]:
    """The target's balance and each categorical column's categories against the champion's data:
    a share that moved beyond its limit, and a category the champion had enough rows of that
    vanished or fell below that count."""
    cfg, target = p.validation.previous, p.data.target
    checks = []
    if p.data.task == "regression":
        a, b = old[target].astype(float), new[target].astype(float)
        moved = abs(b.median() - a.median()) / (a.std() or 1.0)
        ok = moved <= cfg.max_class_share_change
        checks.append(Check("versions: target balance", ok or drift_expected,
                            f"the target's median moved {moved:.3f} standard deviations from version {champion}'s data "
                            f"(at most {cfg.max_class_share_change})" + _expected(ok, drift_expected), target))
    else:
        moved = _share_moves(old[target], new[target])
        worst = max(moved.items(), key=lambda kv: abs(kv[1][1] - kv[1][0]), default=None)
        ok = worst is None or abs(worst[1][1] - worst[1][0]) <= cfg.max_class_share_change
        shown = ", ".join(f"{k}: {a:.1%} → {b:.1%}" for k, (a, b) in moved.items())
        checks.append(Check("versions: class balance", ok or drift_expected,
                            f"class shares against version {champion}'s data: {shown} (each may move at most "
                            f"{cfg.max_class_share_change:.1%})" + _expected(ok, drift_expected), target))
    gates = {g.attribute: g.min_group_size for g in p.evaluation.fairness}
    columns = [f.name for f in p.data.features if f.type == "categorical"] + list(p.data.sensitive_attributes)
    problems, moves = [], []
    for column in dict.fromkeys(columns):
        floor = gates.get(column, cfg.min_category_rows)
        before, after = old[column].value_counts(), new[column].value_counts()
        for value, n in before.items():
            if n >= floor and after.get(value, 0) < floor:
                problems.append(f"{column}={value} had {n} rows in version {champion}'s data and has "
                                f"{after.get(value, 0)} now (at least {floor} needed)")
        for value, (a, b) in _share_moves(old[column], new[column]).items():
            if abs(b - a) > cfg.max_category_share_change:
                moves.append(f"{column}={value} moved from {a:.1%} to {b:.1%} of rows "
                             f"(at most {cfg.max_category_share_change:.0%})")
    detail = "; ".join(problems + moves) + _expected(not moves, drift_expected) if problems or moves else \
        f"every category of version {champion}'s data is still there in a similar share"
    checks.append(Check("versions: categories", not problems and (not moves or drift_expected), detail))
    return checks


def _expected(ok: bool, drift_expected: bool) -> str:
    return "; not blocking: this run retrains because of drift" if drift_expected and not ok else ""


def _share_moves(before: pd.Series, after: pd.Series) -> dict[str, tuple[float, float]]:
    a, b = before.value_counts(normalize=True), after.value_counts(normalize=True)
    return {str(k): (float(a.get(k, 0.0)), float(b.get(k, 0.0))) for k in a.index.union(b.index)}


def counted_groups(holdout: pd.DataFrame, p: Params) -> dict[str, dict[str, int]]:
    """The groups each fairness gate could count on a holdout (at least its min_group_size rows)."""
    out = {}
    for gate in p.evaluation.fairness:
        counts = holdout[gate.attribute].value_counts()
        out[gate.attribute] = {str(k): int(n) for k, n in counts.items() if n >= gate.min_group_size}
    return out
