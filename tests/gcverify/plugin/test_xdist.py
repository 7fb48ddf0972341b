"""Under pytest-xdist the rows travel on the reports and the controller prints one complete
table; a crashed worker loses only its own rows."""
import json

import pytest

CONVERTERS = "--gc-converters=identity,relu_to_leaky,bn_fold,nnabla_channel_last"


def test_two_workers_one_complete_table_and_report(project):
    result = project.runpytest_subprocess("-n", "2", "--gc-models=tiny,lenet", CONVERTERS,
                                          "--gc-report=r.json")
    result.assert_outcomes(passed=6, xfailed=2)
    text = result.stdout.str()
    assert text.count("= gcverify matrix =") == 1
    rows = [line for line in result.outlines if line.split()[:1] and line.split()[0] in (
        "identity", "relu_to_leaky", "bn_fold", "nnabla_channel_last")]
    assert len(rows) == 8
    # registry order, then models as given, whatever order the workers finished in
    assert [r.split()[:2] for r in rows][:2] == [["bn_fold", "tiny"], ["bn_fold", "lenet"]]
    result.stdout.fnmatch_lines(["8 rows: 6 passed, 2 xfailed", "report: 8 rows written to r.json"])
    doc = json.loads((project.path / "r.json").read_text())
    assert len({r["id"] for r in doc["rows"]}) == 8


def test_same_table_without_xdist(project):
    result = project.runpytest("--gc-models=tiny,lenet", CONVERTERS, "--gc-report=r.json")
    result.assert_outcomes(passed=6, xfailed=2)
    result.stdout.fnmatch_lines(["8 rows: 6 passed, 2 xfailed"])


def test_a_crashed_worker_loses_only_its_own_rows(project, monkeypatch):
    monkeypatch.setenv("GC_PLANT", "crash")  # relu_to_leaky kills the xdist worker running it
    result = project.runpytest_subprocess("-n", "2", "--gc-models=tiny,lenet",
                                          "--gc-converters=identity,relu_to_leaky", "--gc-report=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = json.loads((project.path / "r.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in doc["rows"]}
    assert outcomes == {"identity-tiny-cpu": "passed", "identity-lenet-cpu": "passed",
                        "relu_to_leaky-tiny-cpu": "crashed", "relu_to_leaky-lenet-cpu": "crashed"}
    result.stdout.fnmatch_lines(["*relu_to_leaky*tiny*crashed*worker crashed*"])
