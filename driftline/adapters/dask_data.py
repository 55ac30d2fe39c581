"""The data version as partitions read on a Dask cluster (training.distributed).

The DVC md5 in `data.dvc` names the version; its file list (the `.dir` object, from the DVC
cache or fetched alone from the remote) names each Parquet file by its own md5; the project's
DVC remote (a directory, or S3) holds each file under that md5. The workers read those objects
there, so what they read is exactly the version the lineage records, and nothing passes through
the flow's process: it reads the file list and each file's Parquet footer (a few KB), never a
row. Each object's bytes are checked against its md5 on a worker before anything is computed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from driftline.adapters import dvc_data, dvc_versions
from driftline.adapters.dvc_data import DataError


@dataclass(frozen=True)
class DataObject:
    relpath: str  # the file's path inside the tracked directory
    md5: str
    url: str  # where the workers read it: an object of the DVC remote


@dataclass(frozen=True)
class Located:
    md5: str  # the data version (data.dvc's md5): the run's lineage
    objects: tuple[DataObject, ...]
    where: str  # the remote, for messages
    storage_options: dict = field(default_factory=dict)  # fsspec options (an S3 endpoint; never a credential)


def locate(root: Path, data_path: str) -> Located:
    """Where the workers read `data_path` at the version `data.dvc` records: DataError, before any
    work, when a file is not on the DVC remote (push it) or the workspace differs from data.dvc."""
    dvc_file = dvc_data.dvc_file_for(root, data_path)
    md5 = dvc_data.tracked_md5(dvc_file)
    if (root / data_path).exists() and dvc_data.workspace_changed(root, dvc_file):
        raise DataError(f"{data_path} differs from {dvc_file.name}: version your change with "
                        f"`dvc add {Path(data_path).parts[0]}` (or discard it with `dvc checkout`) before training")
    tracked = dvc_file.with_suffix("").relative_to(root)
    if not md5.endswith(".dir"):
        entries = [{"relpath": Path(data_path).name, "md5": md5}]
    else:
        listing = json.loads(dvc_versions.cached(root, md5).read_text())  # the file list alone
        inside = Path(data_path).relative_to(tracked).as_posix()
        entries = dvc_versions.directory_entries(listing, inside, md5) if data_path.endswith("/") else \
            [e for e in listing if e["relpath"] == inside]
        if not entries:
            raise DataError(f"version {md5} of {tracked} holds no {inside}")
    odb, endpoint, where = _remote(root)
    objects, missing = [], []
    for entry in entries:
        path = odb.oid_to_path(entry["md5"])
        objects.append(DataObject(entry["relpath"], entry["md5"],
                                  path if odb.fs.protocol == "local" else odb.fs.unstrip_protocol(path)))
        if not odb.fs.exists(path):
            missing.append(entry["relpath"])
    if missing:
        raise DataError(f"{len(missing)} of the {len(entries)} files of {data_path} at version {md5} are not on the "
                        f"DVC remote ({where}), e.g. {missing[0]}: the Dask workers read the data there; push it "
                        f"(`dvc push {dvc_file.name}`). Nothing was read or trained.")
    options = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    return Located(md5, tuple(objects), where, options)


def _remote(root: Path):
    """The default remote's object store, its S3 endpoint (if any), and how to name it."""
    from dvc.exceptions import DvcException

    try:
        with dvc_data.opened(root) as repo:
            odb = repo.cloud.get_remote_odb()
            name = repo.config["core"].get("remote")
            endpoint = repo.config["remote"].get(name, {}).get("endpointurl") if name else None
    except DvcException as err:
        raise DataError(f"no DVC remote the workers could read the data from ({err}); set one up "
                        "(`driftline init`, or `dvc remote add -d`)") from None
    return odb, endpoint, f"{odb.fs.protocol} {odb.path}"


@dataclass(frozen=True)
class Piece:
    url: str
    row_groups: tuple[int, ...]
    rows: int


def pieces(located: Located, partitions: int) -> list[Piece]:
    """The row groups of every file, in file order, gathered into pieces of about total/partitions
    rows (a piece never spans two files). Footers are read here: a few KB a file."""
    import fsspec
    import pyarrow.parquet as pq

    footers = []
    for obj in located.objects:
        with fsspec.open(obj.url, "rb", **located.storage_options) as f:
            meta = pq.ParquetFile(f).metadata
            footers.append((obj.url, [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]))
    total = sum(sum(groups) for _, groups in footers)
    target = max(1, -(-total // partitions))
    out = []
    for url, groups in footers:
        start, rows = 0, 0
        for i, n in enumerate(groups):
            rows += n
            if rows >= target or i == len(groups) - 1:
                out.append(Piece(url, tuple(range(start, i + 1)), rows))
                start, rows = i + 1, 0
    return out


def read_piece(piece: Piece, storage_options: dict) -> pd.DataFrame:
    """One piece as pandas, read on a worker."""
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(piece.url, "rb", **storage_options) as f:
        return pq.ParquetFile(f).read_row_groups(list(piece.row_groups)).to_pandas()


def read(located: Located, partitions: int):
    """The version as a lazy Dask DataFrame of `partitions` partitions (more when a file's row
    groups cannot be gathered into fewer), in file and row order."""
    import dask.dataframe as dd
    import fsspec
    import pyarrow.parquet as pq

    parts = pieces(located, partitions)
    with fsspec.open(parts[0].url, "rb", **located.storage_options) as f:
        meta = pq.ParquetFile(f).schema_arrow.empty_table().to_pandas()
    ddf = dd.from_map(read_piece, parts, storage_options=located.storage_options, meta=meta,
                      enforce_metadata=False, label="read-data-version")
    return ddf.repartition(npartitions=partitions) if ddf.npartitions < partitions else ddf


def object_md5(url: str, storage_options: dict) -> str:
    import fsspec

    digest = hashlib.md5(usedforsecurity=False)
    with fsspec.open(url, "rb", **storage_options) as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(client, located: Located) -> None:
    """Each object's bytes hashed on a worker against the md5 its version records: a corrupt copy
    on the remote stops the run before anything is computed from it."""
    futures = client.map(object_md5, [o.url for o in located.objects], storage_options=located.storage_options,
                         pure=False)
    for obj, actual in zip(located.objects, client.gather(futures), strict=True):
        if actual != obj.md5:
            raise DataError(f"{obj.relpath}: md5 {actual} on the DVC remote, but version {located.md5} records "
                            f"{obj.md5}; the copy is corrupt or incomplete. Nothing was trained.")
