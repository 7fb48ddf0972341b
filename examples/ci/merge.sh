#!/usr/bin/env bash
# The gate of the sharded matrix: merge every shard's report into one table, one JSON report
# and one HTML report, and fail on a failed or regressed row or on a missing shard.
#   bash examples/ci/merge.sh [extra gcverify report args]
# Environment (all optional): PYTHON, GC_CI_OUT (as in shard.sh), GC_BASELINE (a baseline
# to compare with when the file exists, else a note says so; made by
# `gcverify report ... --save-baseline PATH`).
# Exit status: 0 all good, 1 a failed/regressed row or an incomplete set of shards, 2 a file
# that cannot be read or written.
set -euo pipefail
out=${GC_CI_OUT:-reports/ci}
shopt -s nullglob
reports=("$out"/shard-*.json)  # a shard that wrote nothing is named by the merge, not hidden
if [ ${#reports[@]} -eq 0 ]; then echo "error: no shard reports in $out" >&2; exit 1; fi
baseline=()
if [ -n "${GC_BASELINE:-}" ]; then
    if [ -f "$GC_BASELINE" ]; then
        baseline=(--baseline "$GC_BASELINE")
    else
        echo "note: no $GC_BASELINE: merged rows are not compared with a baseline" >&2
    fi
fi
exec "${PYTHON:-python}" -m gcverify report "${reports[@]}" ${baseline[@]+"${baseline[@]}"} \
    --json "$out/merged.json" --html "$out/report.html" "$@"
