"""--gc-shard=K/N in real pytest sessions: N shards run every case exactly once (also under
xdist), their merge equals the unsharded run apart from timings, costs come from a previous
report when given, a missing shard fails the merge, and bad values are usage errors."""
import json
import subprocess
import sys

import pytest

from gcverify.plugin.sharding import case_costs, static_cost
from gcverify.plugin.session import Case
from gcverify.report.row import Row

MATRIX = ("--gc-models=tiny,lenet", "--gc-converters=identity,relu_to_leaky,bn_fold,nnabla_bn_fold")
CASES = 8
TIMINGS = {"conversion_time", "first_forward_time", "time_original", "time_converted", "speed_ratio",
           "speed_judged", "speed_low", "speed_high", "speed_rounds", "speed_verdict", "saved_time",
           "duration", "host"}


def _doc(project, name):
    return json.loads((project.path / name).read_text())


def _run_shards(project, n, *extra):
    for k in range(1, n + 1):
        result = project.runpytest(*MATRIX, "--gc-shard={}/{}".format(k, n),
                                   "--gc-report=s{}.json".format(k), *extra)
        assert result.ret == 0, result.stdout.str()
    return [_doc(project, "s{}.json".format(k)) for k in range(1, n + 1)]


def _merge(project, *paths, extra=()):
    return subprocess.run([sys.executable, "-m", "gcverify", "report", *paths, *extra],
                          cwd=str(project.path), capture_output=True, text=True, timeout=300)


def _without_timings(rows):
    return {r["id"]: {k: v for k, v in r.items() if k not in TIMINGS} for r in rows}


def test_three_shards_run_every_case_once_and_merge_to_the_unsharded_report(project):
    project.runpytest(*MATRIX, "--gc-report=whole.json").assert_outcomes(passed=7, xfailed=1)
    shards = _run_shards(project, 3)
    ids = [r["id"] for doc in shards for r in doc["rows"]]
    assert len(ids) == len(set(ids)) == CASES
    assert all(doc["rows"] for doc in shards)  # balanced: nobody idles
    assert {doc["shard"]["index"] for doc in shards} == {1, 2, 3}
    merged = _merge(project, "s1.json", "s2.json", "s3.json", extra=("--json", "merged.json"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    whole, together = _doc(project, "whole.json")["rows"], _doc(project, "merged.json")["rows"]
    assert [r["id"] for r in together] == [r["id"] for r in whole]  # matrix order
    assert _without_timings(together) == _without_timings(whole)


def test_a_missing_shard_fails_the_merge_naming_it(project):
    _run_shards(project, 3)
    merged = _merge(project, "s1.json", "s3.json")
    assert merged.returncode == 1
    assert "SHARDS: shard 2/3 is missing: no report holds its" in merged.stdout


def test_a_shard_prints_its_part_and_deselects_the_rest(project):
    result = project.runpytest(*MATRIX, "--gc-shard=2/3")
    outcomes = result.parseoutcomes()
    assert outcomes["deselected"] + outcomes.get("passed", 0) + outcomes.get("xfailed", 0) == CASES
    result.stdout.fnmatch_lines(["*rows: *; shard 2/3 of 8 cases (balanced by static estimate)"])
    assert "cases have no row" not in result.stdout.str()  # the other shards' cases are not missing


def test_shards_under_xdist_hold_the_same_cases(project):
    project.runpytest(*MATRIX, "--gc-shard=1/2", "--gc-report=plain.json")
    project.runpytest_subprocess("-n", "2", *MATRIX, "--gc-shard=1/2", "--gc-report=xdist.json")
    plain, xdist = _doc(project, "plain.json"), _doc(project, "xdist.json")
    assert sorted(r["id"] for r in plain["rows"]) == sorted(r["id"] for r in xdist["rows"])
    assert plain["shard"]["plan"] == xdist["shard"]["plan"]


def test_costs_from_a_previous_report_balance_the_plan(project):
    project.runpytest(*MATRIX, "--gc-report=previous.json")
    result = project.runpytest(*MATRIX, "--gc-shard=1/2", "--gc-shard-costs=previous.json",
                               "--gc-report=s1.json")
    result.stdout.fnmatch_lines(["*shard 1/2 of 8 cases (balanced by durations of 8 of 8 cases from "
                                 "a previous report (previous.json))"])
    assert _doc(project, "s1.json")["shard"]["costs"].startswith("durations of 8 of 8 cases")


def test_tests_that_are_not_matrix_cases_run_in_shard_one_only(project):
    project.makepyfile(test_mine="def test_mine():\n    assert True\n")
    ran = [project.runpytest(*MATRIX, "--gc-shard={}/2".format(k), "-k", "mine").parseoutcomes().get("passed", 0)
           for k in (1, 2)]
    assert ran == [1, 0]


@pytest.mark.parametrize("option, message", [
    ("--gc-shard=4/3", "*gcverify: --gc-shard 4/3: K must be between 1 and N=3 (shards are numbered 1..3)*"),
    ("--gc-shard=0/3", "*gcverify: --gc-shard 0/3: K must be between 1 and N=3*"),
    ("--gc-shard=1/0", "*gcverify: --gc-shard 1/0: N, the number of shards, must be at least 1*"),
    ("--gc-shard=2", "*gcverify: --gc-shard takes K/N (run shard K of N, e.g. 2/3), got '2'*"),
    ("--gc-shard=a/b", "*gcverify: --gc-shard takes K/N*got 'a/b'*"),
    ("--gc-shard-costs=nowhere.json", "*gcverify: --gc-shard-costs nowhere.json: no such report file*"),
])
def test_bad_shard_options_are_usage_errors(project, option, message):
    args = [option] if option.startswith("--gc-shard=") else [option, "--gc-shard=1/2"]
    result = project.runpytest(*MATRIX, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_costs_file_that_is_not_a_report_is_a_usage_error(project):
    (project.path / "junk.json").write_text("[1, 2]")
    result = project.runpytest(*MATRIX, "--gc-shard=1/2", "--gc-shard-costs=junk.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gcverify: --gc-shard-costs: junk.json is not a gcverify report*"])


class _Spec:
    def __init__(self, speed):
        self.speed = speed

    def speed_on(self, device):
        return object() if self.speed else None


def test_the_static_estimate_weighs_models_converters_and_speed_checks():
    small, big = Case("identity", "lenet", "lenet", "cpu"), Case("identity", "resnet50", "resnet50", "cpu")
    assert static_cost(big, _Spec(False)) == 60 * static_cost(small, _Spec(False))
    assert static_cost(Case("low_rank", "resnet50", "resnet50", "cpu"), _Spec(False)) == 60 * 40
    assert static_cost(small, _Spec(True), speed_repeats=5) == 1 + 12 + 50
    assert static_cost(big, _Spec(True), speed_repeats=10) == 60 + 2 * (12 * 60 + 50)


def test_measured_costs_win_and_the_rest_are_scaled_to_seconds():
    cases = [Case("a", "m", "m", "cpu"), Case("b", "m", "m", "cpu"), Case("c", "m", "m", "cpu")]
    estimate = {"a-m-cpu": 1.0, "b-m-cpu": 2.0, "c-m-cpu": 4.0}
    previous = [Row("a-m-cpu", duration=0.5), Row("b-m-cpu", duration=1.0)]
    costs, source = case_costs(cases, lambda c: estimate[c.id], previous)
    assert costs == {"a-m-cpu": 0.5, "b-m-cpu": 1.0, "c-m-cpu": 2.0}  # median 0.5 s per unit
    assert source == "durations of 2 of 3 cases from a previous report"
    assert case_costs(cases, lambda c: estimate[c.id], [Row("x")])[1] == \
        "static estimate (the previous report has no durations for these cases)"
