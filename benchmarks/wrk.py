"""wrk (C, one event-loop thread, outside the server's process) as the serving benchmark's headline
load generator: the in-process Python generator shares the interpreter's cost with its own
measurement, wrk does not. The bodies rotate through the same sample rows as the Python generator.

    python -m benchmarks.wrk http://127.0.0.1:8080/predict --clients 16 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile

from benchmarks.loadgen import sample_records

# wrk calls `request` for every request and `done` once; `done` prints one JSON line we parse.
_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "status_errors": %%d, ' ..
    '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n', summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, clients: int, seconds: float, records: list[dict], wrap=lambda r: r) -> dict:
    """wrk with one thread and `clients` keep-alive connections; the same keys as loadgen.run."""
    bodies = ",".join(f"[==[{json.dumps(wrap(r))}]==]" for r in records)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_SCRIPT % bodies)
        script.flush()
        out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                              "-s", script.name, url], capture_output=True, text=True, timeout=seconds + 60,
                             check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    r = json.loads(line[4:])
    return {"requests": r["requests"], "errors": r["status_errors"] + r["socket_errors"],
            "rps": r["requests"] / (r["duration_us"] / 1e6), "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.clients, args.seconds, sample_records())))


if __name__ == "__main__":
    main()
