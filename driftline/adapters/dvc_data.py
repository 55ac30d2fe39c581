"""DVC adapter: the dataset's identity (the md5 in `data.dvc`), pull, add and push.
Reading a past version from the cache, the workspace untouched, is in `dvc_versions`.

Uses DVC's Python API (`dvc.repo.Repo`) against a real git+DVC repository; nothing is
opened at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml


class DataError(RuntimeError):
    """The dataset cannot be pulled or read; the message says what to do.

    `transient` marks failures worth retrying (a remote that did not answer), as opposed to
    ones that will fail the same way again (untracked data, a changed workspace).
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Snapshot:
    path: Path  # the data file the params point at
    md5: str  # DVC md5 of the tracked output (a directory md5 ends in `.dir`)
    dvc_file: str


def _quiet() -> None:
    """driftline reports what happened itself; DVC's hints ("git add data.dvc") and warnings
    about what a fresh remote lacks would only confuse. Failures still raise."""
    import logging

    logging.getLogger("dvc").setLevel(logging.ERROR)


def _repo(root: Path):
    from dvc.repo import Repo

    _quiet()
    return Repo(str(root))


def dvc_file_for(root: Path, data_path: str) -> Path:
    """The `.dvc` file tracking `data_path` (the file itself or one of its parent folders)."""
    rel = Path(data_path)
    for candidate in [rel, *rel.parents]:
        if str(candidate) in ("", "."):
            break
        dvc_file = root / f"{candidate}.dvc"
        if dvc_file.exists():
            return dvc_file
    raise DataError(f"{data_path} is not tracked by DVC: run `dvc add {rel.parts[0]}` and commit the .dvc file")


def tracked_md5(dvc_file: Path) -> str:
    try:
        outs = yaml.safe_load(dvc_file.read_text())["outs"]
        return str(outs[0]["md5"])
    except (OSError, KeyError, IndexError, TypeError) as err:
        raise DataError(f"{dvc_file}: cannot read the tracked md5 ({err})") from None


def is_initialized(root: Path) -> bool:
    return (root / ".dvc").is_dir()


def init(root: Path) -> None:
    from dvc.repo import Repo

    if not (root / ".git").exists():
        raise DataError(f"{root} is not a git repository: run `git init` first")
    _quiet()
    Repo.init(str(root)).close()


def default_remote(root: Path) -> str | None:
    with contextlib.closing(_repo(root)) as repo:
        return repo.config["core"].get("remote")


def set_local_remote(root: Path, path: Path, name: str = "local") -> None:
    """A directory remote, written to `.dvc/config.local` because the path is this machine's."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(_repo(root)) as repo, repo.config.edit("local") as conf:
        conf["remote"][name] = {"url": str(path)}
        conf["core"]["remote"] = name


def set_s3_remote(root: Path, url: str, endpoint_url: str | None = None, name: str = "storage") -> None:
    """An S3 remote in `.dvc/config`, to be committed: the address is the team's, and no
    credential is ever written (DVC reads them from the environment or the AWS files). A
    machine-local default from `.dvc/config.local` would override it, so that one is dropped."""
    with contextlib.closing(_repo(root)) as repo:
        with repo.config.edit("repo") as conf:
            conf["remote"][name] = {"url": url, **({"endpointurl": endpoint_url} if endpoint_url else {})}
            conf["core"]["remote"] = name
        with repo.config.edit("local") as conf:
            conf["core"].pop("remote", None)


def workspace_changed(root: Path, dvc_file: Path) -> bool:
    """True when the tracked files on disk differ from what the `.dvc` file records."""
    with contextlib.closing(_repo(root)) as repo:
        status = repo.status(targets=[str(dvc_file)])
    for entries in status.values():
        for entry in entries:
            changed = entry.get("changed outs", {}) if isinstance(entry, dict) else {}
            if any(state in ("modified", "new") for state in changed.values()):
                return True
    return False


def pull(root: Path, dvc_file: Path) -> None:
    from dvc.exceptions import DvcException

    try:
        with contextlib.closing(_repo(root)) as repo:
            repo.pull(targets=[str(dvc_file)])
    except DvcException as err:
        raise DataError(f"dvc pull {dvc_file.name} failed: {err}. Is the remote set up (`driftline init`)?",
                        transient=True) from None


def checkout(root: Path, dvc_file: Path) -> None:
    """Make the workspace match the `.dvc` file again (from the cache), discarding other data."""
    with contextlib.closing(_repo(root)) as repo:
        repo.checkout(targets=[str(dvc_file)], force=True)


def push(root: Path, dvc_file: Path) -> int:
    with contextlib.closing(_repo(root)) as repo:
        return int(repo.push(targets=[str(dvc_file)]))


def add(root: Path, path: str) -> Path:
    with contextlib.closing(_repo(root)) as repo:
        repo.add(str(root / path))
    return root / f"{path}.dvc"


def snapshot(root: Path, data_path: str) -> Snapshot:
    """Pull the data the params point at, check its bytes, and say which version it is."""
    dvc_file = dvc_file_for(root, data_path)
    if (root / data_path).exists() and workspace_changed(root, dvc_file):
        raise DataError(
            f"{data_path} differs from {dvc_file.name}: version your change with "
            f"`dvc add {Path(data_path).parts[0]}` (or discard it with `dvc checkout`) before training"
        )
    pull(root, dvc_file)
    verify(root, dvc_file)
    return Snapshot(root / data_path, tracked_md5(dvc_file), dvc_file.name)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(root: Path, dvc_file: Path) -> None:
    """Hash the pulled files ourselves against what the `.dvc` file records. DVC trusts what
    it downloads unless the remote says `verify = true`, so a corrupt copy on the remote
    would otherwise reach training."""
    target, expected = dvc_file.with_suffix(""), tracked_md5(dvc_file)  # `X.dvc` tracks `X`
    if not expected.endswith(".dir"):
        entries = [(target, expected)]
    else:
        manifest = root / ".dvc" / "cache" / "files" / "md5" / expected[:2] / expected[2:]
        if not manifest.exists():  # a cache configured elsewhere (`dvc cache dir`)
            with contextlib.closing(_repo(root)) as repo:
                manifest = Path(repo.cache.local.path) / expected[:2] / expected[2:]
        try:
            listing = json.loads(manifest.read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"{dvc_file.name}: cannot read the file list of {expected} ({err})") from None
        entries = [(target / e["relpath"], e["md5"]) for e in listing]
    for path, md5 in entries:
        actual = file_md5(path) if path.exists() else "missing"
        if actual != md5:
            raise DataError(f"{path.relative_to(root)}: md5 {actual}, but {dvc_file.name} records {md5}; the "
                            "copy pulled from the remote is corrupt or incomplete. Nothing was trained.")


def read_table(path: Path, kind: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet table, or a directory of Parquet files read as one table (its files in
    name order); `kind` ("csv", "parquet") when the path has no telling suffix."""
    if not path.exists():
        raise DataError(f"{path}: no such data file")
    if path.is_dir():
        return read_parquet_files(parquet_files(path), str(path))
    kind = kind or ("csv" if path.suffix == ".csv" else "parquet")
    try:
        return pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader error means unreadable data
        raise DataError(f"{path}: cannot be read as {kind}: {err}") from None


def is_part(relpath: str) -> bool:
    """A Parquet file of a data directory: `.parquet` or `.pq`, not hidden (`.x`) nor a marker
    written beside the data (`_SUCCESS`, `_metadata`)."""
    parts = Path(relpath).parts
    return relpath.endswith((".parquet", ".pq")) and not any(p.startswith((".", "_")) for p in parts)


def parquet_files(directory: Path) -> list[Path]:
    """The Parquet files of a data directory (and its subdirectories), in name order."""
    files = sorted((p for p in directory.rglob("*") if p.is_file() and is_part(p.relative_to(directory).as_posix())),
                   key=lambda p: p.relative_to(directory).as_posix())
    if not files:
        raise DataError(f"{directory}: no Parquet files (*.parquet, *.pq) in this directory")
    return files


def read_parquet_files(files: list[Path], what: str) -> pd.DataFrame:
    import pyarrow.dataset as ds

    try:
        return ds.dataset([str(f) for f in files], format="parquet").to_table().to_pandas()
    except Exception as err:  # noqa: BLE001 - any reader error means unreadable data
        raise DataError(f"{what}: cannot be read as a directory of Parquet files: {err}") from None


def opened(root: Path):
    """The project's DVC repository, closed on leaving: `with opened(root) as repo: ...`."""
    return contextlib.closing(_repo(root))
