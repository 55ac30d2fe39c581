#!/usr/bin/env bash
# What CI runs on main (and what tests/integration/test_live_deployments.py runs): start the
# training-ci deployment on the team's Prefect server, watch it, and write its gate table to
# the job summary. Exits non-zero when the run fails (a failed validation or gate).
#   PREFECT_API_URL (and PREFECT_API_KEY) say which server; WATCH_TIMEOUT defaults to 3600 s.
set -uo pipefail
cd "$(dirname "$0")/.."
PREFECT=${PREFECT:-uv run --frozen prefect}
PYTHON=${PYTHON:-uv run --frozen python}
log=$(mktemp)
$PREFECT deployment run 'training-pipeline/training-ci' --watch --watch-timeout "${WATCH_TIMEOUT:-3600}" \
  2>&1 | tee "$log"
status=${PIPESTATUS[0]}
id=$(grep -oE 'UUID: [0-9a-f-]{36}' "$log" | head -1 | cut -d' ' -f2)
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
if [ -n "$id" ]; then
  $PYTHON -m driftline.ci_report "$id" > "${REPORT_FILE:-training-ci-report.md}" || true
  cat "${REPORT_FILE:-training-ci-report.md}" >> "$summary"
fi
rm -f "$log"
exit "$status"
