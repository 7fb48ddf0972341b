#!/usr/bin/env bash
# One CI job of the sharded matrix: run shard K of N under pytest-xdist and write its JSON
# report (with graph pictures and error profiles, for the merged HTML report).
#   bash examples/ci/shard.sh K N [extra pytest args]
# Environment (all optional):
#   PYTHON          interpreter with gcverify installed (default: python)
#   GC_CI_OUT       where reports go (default: reports/ci)
#   GC_DEVICE       --gc-device (default: cpu; a GPU runner: cudnn)
#   GC_WORKERS      xdist workers (default: auto; a GPU runner: its GPU count, with --gc-gpus)
#   GC_SHARD_COSTS  a previous JSON report (e.g. a merged one): balance by measured durations,
#                   when the file exists (else a static estimate, and a note says so); every
#                   shard must be given the same file (the merge checks the plans agree)
# Exits 0 when the report was written, failed rows included: the merge job is the gate.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 K N [pytest args...]" >&2; exit 2; fi
k=$1 n=$2
shift 2
out=${GC_CI_OUT:-reports/ci}
mkdir -p "$out"
costs=()
if [ -n "${GC_SHARD_COSTS:-}" ]; then
    if [ -f "$GC_SHARD_COSTS" ]; then
        costs=(--gc-shard-costs="$GC_SHARD_COSTS")
    else
        echo "note: no $GC_SHARD_COSTS: shards balanced by the static estimate" >&2
    fi
fi
status=0
"${PYTHON:-python}" -m pytest suites -n "${GC_WORKERS:-auto}" --gc-device="${GC_DEVICE:-cpu}" \
    --gc-shard="$k/$n" ${costs[@]+"${costs[@]}"} --gc-details=all --gc-report="$out/shard-$k.json" "$@" || status=$?
# pytest: 1 = some rows failed (the report holds them); anything else is a broken run
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
test -s "$out/shard-$k.json"
