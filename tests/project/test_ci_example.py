"""The example CI configuration (examples/ci/): the GitHub Actions workflow calls the two
scripts with a consistent shard list, and the scripts run here shard by shard, then the
merge gate, which fails naming a shard whose report is missing."""
import os
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
SMALL = ("--gc-models=lenet", "--gc-converters=identity,bn_fold,nnabla_bn_fold,qdq")


def _bash(script, *args, out, **env_vars):
    env = dict(os.environ, PYTHON=sys.executable, GC_CI_OUT=str(out), GC_WORKERS="0", **env_vars)
    return subprocess.run(["bash", str(CI / script), *args], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_workflow_runs_every_shard_and_gates_on_the_merge():
    flow = yaml.safe_load((CI / "github-actions.yml").read_text())
    shards = flow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(flow["env"]["GC_SHARDS"]) + 1))
    steps = " ".join(s.get("run", "") for s in flow["jobs"]["shard"]["steps"])
    assert "bash examples/ci/shard.sh ${{ matrix.shard }} ${{ env.GC_SHARDS }}" in steps
    merge = flow["jobs"]["merge"]
    assert merge["needs"] == "shard" and merge["if"] == "always()"
    assert "bash examples/ci/merge.sh" in " ".join(s.get("run", "") for s in merge["steps"])


def test_the_scripts_run_locally_shard_by_shard_and_the_merge_is_the_gate(tmp_path):
    done = _bash("run_locally.sh", "2", *SMALL, out=tmp_path, GC_SHARD_COSTS=str(tmp_path / "none.json"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "=== shard 1/2" in done.stdout and "=== shard 2/2" in done.stdout
    assert "note: no {}: shards balanced by the static estimate".format(tmp_path / "none.json") in done.stderr
    assert "4 rows from 2 report(s)" in done.stdout
    again = _bash("shard.sh", "1", "2", *SMALL, out=tmp_path / "again",
                  GC_SHARD_COSTS=str(tmp_path / "merged.json"))  # the last merge balances the next
    assert "balanced by durations of 4 of 4 cases from a previous report" in again.stdout
    assert (tmp_path / "report.html").stat().st_size > 0 and (tmp_path / "merged.json").exists()
    (tmp_path / "shard-2.json").unlink()  # a runner that never uploaded its report
    gate = _bash("merge.sh", out=tmp_path)
    assert gate.returncode == 1
    assert "SHARDS: shard 2/2 is missing" in gate.stdout


def test_a_shard_with_a_broken_run_fails_its_job(tmp_path):
    done = _bash("shard.sh", "1", "2", "--gc-models=nosuchmodel", out=tmp_path)
    assert done.returncode == 4  # pytest's usage error, not hidden as "rows failed"
    assert "unknown model 'nosuchmodel'" in done.stderr
