#!/usr/bin/env bash
# The CI configuration run on one machine, shard by shard, then the merge gate: what the
# GitHub Actions workflow beside this file does on N runners and one final job.
#   bash examples/ci/run_locally.sh [N] [extra pytest args for every shard]
# e.g. bash examples/ci/run_locally.sh 3 --gc-models=lenet,resnet50
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-3}
[ $# -gt 0 ] && shift
here=examples/ci
rm -f "${GC_CI_OUT:-reports/ci}"/shard-*.json  # reports of an earlier run are not shards of this one
for k in $(seq 1 "$n"); do
    echo "=== shard $k/$n"
    bash "$here/shard.sh" "$k" "$n" "$@"
done
echo "=== merge"
bash "$here/merge.sh"
