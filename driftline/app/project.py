"""`driftline init`: make the DVC side of a project ready, idempotently.

On a fresh clone the remote is empty, so the demo data is regenerated (it is seeded and
deterministic), checked against the md5 that `data.dvc` records, and pushed. From then on
the pipeline's pull step is a real `dvc pull`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from driftline.adapters import dvc_data, s3
from driftline.adapters.s3 import S3Location
from driftline.config import Settings
from driftline.core import demo_data
from driftline.waiting import heartbeat

DEMO_FILE = "data/loans.parquet"
DEMO_ROWS = 50_000
DEMO_SEED = 7


@dataclass
class InitReport:
    steps: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.steps.append(text)


def write_demo_data(path: Path, rows: int = DEMO_ROWS, seed: int = DEMO_SEED,
                    scenario: str = "baseline") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    demo_data.generate(rows, seed, scenario).to_parquet(path, index=False)


def _is_demo(root: Path, data_dir: str) -> bool:
    """data.dvc still tracks exactly the one demo file (nobody brought their own data yet)."""
    import yaml

    outs = yaml.safe_load((root / f"{data_dir}.dvc").read_text())["outs"][0]
    return outs.get("nfiles") == 1 and not any(
        p for p in (root / data_dir).glob("*") if p.name != Path(DEMO_FILE).name)


def init_project(settings: Settings, data_dir: str = "data", s3_remote: S3Location | None = None,
                 create_bucket: bool = False) -> InitReport:
    root = settings.root
    out = InitReport()
    if not dvc_data.is_initialized(root):
        dvc_data.init(root)
        out.say("initialised DVC (.dvc/)")
    if s3_remote is not None:
        out.say(s3.check_bucket(s3_remote, create_bucket))
        dvc_data.set_s3_remote(root, s3_remote.url, s3_remote.endpoint_url)
        out.say(f"DVC remote 'storage' -> {s3_remote.url}"
                + (f" (endpointurl {s3_remote.endpoint_url})" if s3_remote.endpoint_url else "")
                + " in .dvc/config: commit it; credentials stay in the environment")
    remote = dvc_data.default_remote(root)
    if remote is None:
        dvc_data.set_local_remote(root, settings.remote_dir)
        out.say(f"DVC remote 'local' -> {settings.remote_dir} (in .dvc/config.local)")
    else:
        out.say(f"DVC remote: {remote} (already configured)")

    dvc_file = root / f"{data_dir}.dvc"
    demo_path = root / DEMO_FILE
    if not dvc_file.exists():
        write_demo_data(demo_path)
        dvc_data.add(root, data_dir)
        out.say(f"generated the demo data ({DEMO_ROWS} rows) and tracked it: {dvc_file.name} "
                f"md5 {dvc_data.tracked_md5(dvc_file)} (commit {dvc_file.name})")
    else:
        expected = dvc_data.tracked_md5(dvc_file)
        try:
            dvc_data.pull(root, dvc_file)
            out.say(f"data present: {data_dir}/ matches {dvc_file.name} (md5 {expected})")
        except dvc_data.DataError as err:
            # Only the embedded demo can be rebuilt, on the local default remote or on an S3
            # remote whose bucket was just checked: anywhere else a failed pull is a real
            # problem (credentials, network) and is reported as such.
            if not (remote in (None, "local") or s3_remote is not None) or not _is_demo(root, data_dir):
                raise
            # A fresh clone: the local remote is empty. Rebuild the seeded demo data and prove
            # it is byte-identical to what data.dvc records before pushing it.
            original = dvc_file.read_text()
            write_demo_data(demo_path)
            dvc_data.add(root, data_dir)
            actual = dvc_data.tracked_md5(dvc_file)
            if actual != expected:
                dvc_file.write_text(original)
                demo_path.unlink(missing_ok=True)
                raise dvc_data.DataError(
                    f"regenerated demo data has md5 {actual} but {dvc_file.name} records {expected}; "
                    "the remote does not hold the tracked data and it cannot be rebuilt here") from err
            out.say(f"regenerated the demo data; md5 {actual} matches {dvc_file.name}")
    with heartbeat(out.say, "dvc push"):
        pushed = dvc_data.push(root, dvc_file)
    out.say(f"pushed {pushed} file(s) to the DVC remote" if pushed else "DVC remote already up to date")
    return out
