#!/usr/bin/env bash
# What CI runs on main (and what tests/integration/test_live_deployments.py runs): start the
# training-ci deployment on the team's Prefect server, watch it, and write its gate table to
# the job summary. Exits non-zero when the run fails (a failed validation or gate).
#   PREFECT_API_URL says which server; PREFECT_API_AUTH_STRING (a self-hosted server's, the team
#   profile's) or PREFECT_API_KEY (Prefect Cloud's) lets in; WATCH_TIMEOUT defaults to 3600 s.
set -uo pipefail
cd "$(dirname "$0")/.."
PREFECT=${PREFECT:-uv run --frozen prefect}
PYTHON=${PYTHON:-uv run --frozen python}
log=$(mktemp)
params=()
if [ -n "${GITHUB_SHA:-}" ]; then params=(--param "expected_commit=$GITHUB_SHA"); fi
$PREFECT deployment run 'training-pipeline/training-ci' ${params[@]+"${params[@]}"} --watch \
  --watch-timeout "${WATCH_TIMEOUT:-3600}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
id=$(grep -oE 'UUID: [0-9a-f-]{36}' "$log" | head -1 | cut -d' ' -f2)
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
report=${REPORT_FILE:-training-ci-report.md}
if [ -n "$id" ] && $PYTHON -m driftline.app.ci_summary "$id" > "$log.md"; then
  mv "$log.md" "$report"  # only a whole report: the PR comment step posts it when it exists
  cat "$report" >> "$summary"
else
  echo "training-ci: no report could be read for flow run ${id:-?}" >&2
fi
rm -f "$log" "$log.md"
exit "$status"
