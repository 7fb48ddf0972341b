"""The mutation score of the verification matrix (issue #12, item 5).

Every planted bug of ``suites/planted_bugs*.py`` is run against its target rows over the
default models, in-process, with the matrix's own session and case runner, and must be
caught: some row must fail a check (a verdict), not merely crash. A bug marked ``survives``
(no zoo model or row exercises its path yet) is a strict expected failure: once the matrix
catches it, the XPASS fails this suite and the marker has to go. The control runs every
target row without any bug: each must pass, or a "catch" would prove nothing.

Each hunt stops at its first catching row, cheap models first (ResNet-50 last). Its figures
travel as a user property; tests/conftest.py prints them as the mutation score table at the
end of the session (with or without xdist).
"""
import json

import pytest

import suites.planted_bugs as planted_bugs
from suites.planted_bugs_hunt import PROPERTY

BUGS = [planted_bugs.lookup(name) for name in planted_bugs.names()]
TARGET_ROWS = sorted({row for bug in BUGS for row in bug.targets})


def _param(bug):
    marks = [pytest.mark.xfail(strict=True, reason="survives: " + bug.survives)] if bug.survives else []
    return pytest.param(bug.name, id=bug.name, marks=marks)


@pytest.mark.parametrize("name", [_param(b) for b in BUGS])
def test_planted_bug_is_caught(name, matrix, record_property):
    bug = planted_bugs.lookup(name)
    hunt = matrix.hunt(bug)
    figures = dict(hunt.figures(), kind=bug.kind, survives=bug.survives)
    record_property(PROPERTY, json.dumps(figures))
    assert hunt.runs, "{} targets {} but no row of them ran".format(name, bug.targets)
    assert hunt.killed, hunt.describe()


@pytest.mark.parametrize("row", TARGET_ROWS)
def test_control_target_rows_pass_without_bugs(row, matrix):
    runs = [matrix.run(case) for case in matrix.rows([row])]
    runs = [r for r in runs if r is not None]
    assert runs, "no default case of row {}".format(row)
    failed = [r for r in runs if r.failed]
    assert not failed, "\n".join("{}: {}".format(r.id, (r.verdicts + r.raised + r.other)[0]) for r in failed)
