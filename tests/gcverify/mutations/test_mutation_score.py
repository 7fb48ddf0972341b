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
from suites.planted_bugs_hunt import EXPENSIVE, PROPERTY

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


# A quantizer bug moves every tensor it quantizes, so the verifier must see it on every model
# the row converts, not on one lucky model: (bug, row, the function type it touches, or None
# for all), ResNet-50 included where the row runs it (the option rows skip it by default).
EVERY_MODEL = [
    ("fp_one_bit_coarser", "fixed_point", None),
    ("fp_doubled_step", "fixed_point", None),
    ("fp_per_channel_axes", "fixed_point_per_channel", None),
    ("fp_misses_relu6", "fixed_point", "ReLU6"),
    ("fp_misses_affine", "fixed_point", "Affine"),
    ("fp_relu_lost_clip", "fixed_point", "ReLU"),
    ("qdq_floor", "qdq_int4", None),  # only the elementary-function quantizer (n != 8) rounds itself
    ("qdq_channel_axis", "qdq", "Convolution"),
    ("qdq_zero_point_sign", "qdq_asymmetric", None),
    ("qdq_lost_clip", "qdq_int4", None),  # caught by the wide probe alone (verify/quant_check.py)
    ("qdq_misses_deconv", "qdq", "Deconvolution"),
    ("qdq_misses_affine", "qdq", "Affine"),
]


@pytest.mark.parametrize("name, row, touches", EVERY_MODEL, ids=[n for n, _, _ in EVERY_MODEL])
def test_a_quantizer_bug_fails_every_model_it_touches(name, row, touches, matrix):
    bug = planted_bugs.lookup(name)
    assert row in bug.targets, "{} does not run {}".format(name, row)
    cases = [c for c in matrix.rows([row]) if touches is None or touches in matrix.function_types(c.model)]
    with bug.apply():
        runs = [r for r in (matrix.run(c) for c in cases) if r is not None]
    assert len(runs) >= 2, "{}: only {} model(s) to judge on".format(name, len(runs))
    missed = [r.id for r in runs if not r.catches]
    assert not missed, "{} passed {} of {} rows: {}".format(name, len(missed), len(runs), ", ".join(missed))


def test_without_the_wide_probe_a_lost_clip_passes_on_some_models(matrix, monkeypatch):
    # calibrated on the very data it is judged on, a quantizer never reaches its clip: the
    # probe on wider inputs is what catches it on every model (the test above)
    import gcverify.verify.quant_check as quant_check
    monkeypatch.setattr(quant_check, "WIDER", 1.0)
    cases = [c for c in matrix.rows(["qdq_int4"]) if c.model not in EXPENSIVE]
    with planted_bugs.lookup("qdq_lost_clip").apply():
        runs = [r for r in (matrix.run(c) for c in cases) if r is not None]
    assert any(not r.catches for r in runs)
