"""A past version of the dataset, read from the DVC cache without touching the workspace: a
champion's training data by the md5 it recorded, or one object of a version (a directory's file
list, one Parquet file) fetched alone from the remote when the cache lacks it.

Apart from `dvc_data` (the workspace: pull, add, push, verify, read): nothing here checks out or
changes the project's files, and `dvc_data` stays under 300 lines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from driftline.adapters.dvc_data import (
    DataError,
    dvc_file_for,
    file_md5,
    is_part,
    opened,
    read_parquet_files,
    read_table,
)


def _cache_dir(root: Path) -> Path:
    default = root / ".dvc" / "cache" / "files" / "md5"
    if default.is_dir():
        return default
    with opened(root) as repo:
        return Path(repo.cache.local.path)


def cached(root: Path, md5: str) -> Path:
    """The DVC cache's copy of object `md5` (fetched alone from the remote when the cache lacks it)."""
    return _cached(root, md5)


def _cached(root: Path, md5: str) -> Path:
    """The cache file of object `md5`, fetched from the default remote when the cache lacks it
    (only that object: a directory's manifest, or one file)."""
    from dvc.exceptions import DvcException
    from dvc_data.hashfile.hash_info import HashInfo

    path = _cache_dir(root) / md5[:2] / md5[2:]
    if not path.exists():
        try:
            with opened(root) as repo:
                failed = repo.cloud.pull([HashInfo("md5", md5)]).failed
        except DvcException as err:
            raise DataError(f"object {md5} cannot be fetched from the DVC remote: {err}", transient=True) from None
        if failed or not path.exists():
            raise DataError(f"object {md5} is neither in the DVC cache nor on the remote")
    return path


def read_version(root: Path, data_path: str, md5: str) -> pd.DataFrame:
    """`data_path` as the tracked version `md5` held it (a champion's training data, by the md5 it
    recorded), read from the DVC cache or fetched from the remote; the workspace is not touched.
    Its bytes are checked against the md5 its version records. DataError when it cannot be had."""
    dvc_file = dvc_file_for(root, data_path)
    tracked = dvc_file.with_suffix("").relative_to(root)  # `data.dvc` tracks `data`
    if md5.endswith(".dir"):
        try:
            listing = json.loads(_cached(root, md5).read_text())
        except ValueError as err:
            raise DataError(f"the file list of version {md5} cannot be read ({err})") from None
        if data_path.endswith("/"):  # a directory of Parquet files: each one from the cache, checked
            entries = directory_entries(listing, Path(data_path).relative_to(tracked).as_posix(), md5)
            return read_parquet_files([_checked(root, e["md5"], data_path) for e in entries], data_path)
        relpath = Path(data_path).relative_to(tracked).as_posix()
        entry = next((e for e in listing if e["relpath"] == relpath), None)
        if entry is None:
            raise DataError(f"version {md5} of {tracked} holds no {relpath}")
        md5 = entry["md5"]
    return read_table(_checked(root, md5, data_path), "csv" if data_path.endswith(".csv") else "parquet")


def _checked(root: Path, md5: str, data_path: str) -> Path:
    path = _cached(root, md5)
    if file_md5(path) != md5:
        raise DataError(f"the cached copy of {data_path} at version {md5} is corrupt (its md5 differs)")
    return path


def directory_entries(listing: list[dict], prefix: str, md5: str) -> list[dict]:
    """The Parquet files under `prefix` (a directory inside the tracked one; "." for itself) in a
    directory version's file list, in name order."""
    under = "" if prefix in ("", ".") else prefix.rstrip("/") + "/"
    entries = sorted((e for e in listing if e["relpath"].startswith(under) and is_part(e["relpath"][len(under):])),
                     key=lambda e: e["relpath"])
    if not entries:
        raise DataError(f"version {md5} holds no Parquet files under {prefix or '.'}/")
    return entries
