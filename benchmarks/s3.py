"""DVC push and pull of the demo data: S3 (moto's server on loopback) against a local directory
remote (the named baseline), in the same run.

    make bench-s3     # or: uv run python -m benchmarks.s3 --rows 50000 --repeat 3

Each repeat pushes from a fresh project and pulls into a fresh clone with an empty cache, so
every transfer moves the whole file. Loopback hides network latency: this measures what
DVC, s3fs and the S3 protocol cost, not the network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import results as results_file
from driftline.adapters import dvc_data, s3
from driftline.core import demo_data


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _project(root: Path, rows: int, remote: str, endpoint: str | None) -> Path:
    root.mkdir(parents=True)
    _git(root, "init", "-q")
    (root / "data").mkdir()
    demo_data.generate(rows, 7).to_parquet(root / "data" / "loans.parquet", index=False)
    dvc_data.init(root)
    if remote.startswith("s3://"):
        dvc_data.set_s3_remote(root, remote, endpoint)
    else:
        dvc_data.set_local_remote(root, Path(remote))
    dvc_data.add(root, "data")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "data")
    return root


def _round(base: Path, rows: int, remote: str, endpoint: str | None) -> tuple[float, float]:
    project = _project(base / "proj", rows, remote, endpoint)
    start = time.perf_counter()
    dvc_data.push(project, project / "data.dvc")
    push = time.perf_counter() - start
    clone = base / "clone"
    _git(base, "clone", "-q", str(project), str(clone))
    if not remote.startswith("s3://"):
        dvc_data.set_local_remote(clone, Path(remote))
    start = time.perf_counter()
    dvc_data.pull(clone, clone / "data.dvc")
    pull = time.perf_counter() - start
    assert (clone / "data" / "loans.parquet").read_bytes() == (project / "data" / "loans.parquet").read_bytes()
    return push, pull


def main() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION":
                       "us-east-1", "DVC_SITE_CACHE_DIR": tempfile.mkdtemp()})
    s3.use_safe_checksums()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3.check_bucket(s3.S3Location.parse("s3://bench/dvc", endpoint), create=True)
    results: dict[str, list[tuple[float, float]]] = {"local": [], "s3": []}
    try:
        for i in range(args.repeat):
            for kind in ("local", "s3"):  # alternating, so machine drift hits both
                with tempfile.TemporaryDirectory() as tmp:
                    base = Path(tmp)
                    remote = f"s3://bench/dvc/{i}" if kind == "s3" else str(base / "remote")
                    results[kind].append(_round(base, args.rows, remote, endpoint))
                    shutil.rmtree(base, ignore_errors=True)
    finally:
        server.stop()
    size = len(demo_data.generate(args.rows, 7).to_parquet(index=False)) / 1e6
    print(f"demo data: {args.rows:,} rows, {size:.1f} MB of Parquet; {args.repeat} rounds each")
    for kind, runs in results.items():
        print(f"  {kind:5}: push {', '.join(f'{p:.2f}' for p, _ in runs)} s; "
              f"pull {', '.join(f'{q:.2f}' for _, q in runs)} s")
    med = {k: (statistics.median(p for p, _ in v), statistics.median(q for _, q in v)) for k, v in results.items()}
    print(f"  ratio S3 / local directory (medians): push {med['s3'][0] / med['local'][0]:.2f}, "
          f"pull {med['s3'][1] / med['local'][1]:.2f}")
    results_file.write(
        "s3", "DVC push and pull: S3 (moto on loopback) against a local directory remote", "make bench-s3",
        settings={"rows": args.rows, "rounds": args.repeat, "megabytes": round(size, 2)},
        ratios=[results_file.ratio("push, S3 / local directory (medians)", med["s3"][0] / med["local"][0]),
                results_file.ratio("pull, S3 / local directory (medians)", med["s3"][1] / med["local"][1])],
        figures={kind: {"push_seconds_median": round(m[0], 3), "pull_seconds_median": round(m[1], 3)}
                 for kind, m in med.items()},
        rounds=[{"round": i + 1, "remote": kind, "push_seconds": round(results[kind][i][0], 3),
                 "pull_seconds": round(results[kind][i][1], 3)}
                for i in range(args.repeat) for kind in ("local", "s3")])


if __name__ == "__main__":
    main()
