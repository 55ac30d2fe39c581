"""Reading the prediction log back (`predlog` writes it): its rows by the hours of their
partitions, the drift monitor's window of live rows and the labels fed back since, an earlier
window's rows, and when each request id was issued. Apart from `predlog`, whose writer runs in the
model server: the monitor reads and never writes, and `predlog` stays under 300 lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from driftline.adapters.predlog import filesystem, join
from driftline.config import Params, names_by_type
from driftline.core import monitoring
from driftline.core.window_performance import PROBA


def read_log(directory: str | Path, since: datetime | None = None, columns: list[str] | None = None,
             categorical: list[str] | None = None, until: datetime | None = None) -> pd.DataFrame:
    """The log's rows; with `since` (and `until`), only the partitions of those hours are read (rows
    are then filtered by the caller). `columns` limits what is read (missing ones are skipped; a
    name ending in `*` is a prefix) and `categorical` columns come back as pandas categoricals: at
    a million rows, strings as Python objects cost several times the memory."""
    fs, root = filesystem(directory)
    fs.invalidate_cache()  # s3fs caches listings; the server keeps adding parts
    files = sorted(fs.glob(f"{root}/date=*/hour=*/*.parquet"))
    if since is not None:
        first = since.astimezone(UTC).strftime("date=%Y-%m-%d/hour=%H")
        files = [f for f in files if "/".join(f.split("/")[-3:-1]) >= first]
    if until is not None:
        last = until.astimezone(UTC).strftime("date=%Y-%m-%d/hour=%H")
        files = [f for f in files if "/".join(f.split("/")[-3:-1]) <= last]
    if not files:
        return pd.DataFrame()
    prefixes = tuple(c[:-1] for c in columns or [] if c.endswith("*"))
    tables = []
    for f in files:
        names = pq.read_schema(f, filesystem=fs).names
        wanted = names if columns is None else \
            [c for c in columns if c in names] + [n for n in names if prefixes and n.startswith(prefixes)]
        as_dict = [c for c in categorical or [] if c in wanted]
        tables.append(pq.read_table(f, columns=wanted, read_dictionary=as_dict or None, filesystem=fs))
    # One Arrow concat, then one conversion: a frame per file costs more at a million rows.
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def read_live_window(log_dir: str | Path, since: datetime, last_rows: int | None,
                     p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's live rows, only the columns the monitor uses (categoricals as categories),
    and the labels fed back since the window began."""
    _, categorical = names_by_type(p.data.features)
    columns = [*p.data.feature_names, *monitoring.LOG_COLUMNS, f"{PROBA}*"]
    rows = read_log(join(log_dir, "predictions"), since, columns, [*categorical, "variant", "status", "model_version"])
    return (monitoring.window(monitoring.live_rows(rows), pd.Timestamp(since), last_rows),
            read_labels(log_dir, since))


def read_labels(log_dir: str | Path, since: datetime) -> pd.DataFrame:
    """The labels fed back since `since` (they name rows logged before them)."""
    return read_log(join(log_dir, "feedback"), since, ["request_id", "record_index", "label", "timestamp"])


def read_past_window(log_dir: str | Path, first: str, last: str, p: Params) -> pd.DataFrame:
    """The live rows logged from `first` to `last` (the log's own ISO times of the rows an earlier
    monitor run judged), only what their performance needs: the row keys, the answer, the score
    and, for regression, the features its loss estimator reads."""
    features = p.data.feature_names if p.data.task == "regression" else []
    rows = read_log(join(log_dir, "predictions"), datetime.fromisoformat(first),
                    [*features, *monitoring.LOG_COLUMNS, f"{PROBA}*"], ["variant", "status", "model_version"],
                    until=datetime.fromisoformat(last))
    if rows.empty:
        return rows
    stamps = rows["timestamp"].astype(str)  # one ISO format in UTC: as text they sort like time
    return monitoring.live_rows(rows[(stamps >= first) & (stamps <= last)])


def issued_at(request_ids: pd.Series) -> np.ndarray:
    """When each request id was issued (epoch seconds; NaN for an id of another shape), read from
    the id itself as serving.ids lays it out (8 random bytes, then the issue time as a big-endian
    uint32, ...; 56 hex digits). Not verified: the monitor only uses it to find which earlier
    window a label belongs to; /feedback verified the id when the label came in."""
    text = request_ids.astype(str)
    ok = (text.str.len() == 56) & text.str.fullmatch(r"[0-9a-fA-F]+").fillna(False)
    out = np.full(len(text), np.nan)
    out[ok.to_numpy()] = text[ok].str.slice(16, 24).apply(int, args=(16,)).to_numpy(dtype="float64")
    return out
