"""The planted-bug catalogue itself: well formed, every bug undone exactly, its table in
docs/planted_bugs.md in step with it, and ``GCVERIFY_PLANT`` (the root conftest) turning a
passing matrix red end to end, in pytest-xdist workers too."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

import suites.planted_bugs as planted_bugs
from gcverify.api import default_converters

ROOT = pathlib.Path(__file__).resolve().parents[3]

BUGS = [planted_bugs.lookup(name) for name in planted_bugs.names()]
_MISSING = object()


def test_every_bug_is_described_and_targets_registered_rows():
    ours = {spec.name for spec in default_converters().select("ours")}  # ours.py and compat.py
    assert len(BUGS) >= 42  # the catalogue only grows: a bug dropped by mistake fails here
    for bug in BUGS:
        assert re.fullmatch(r"[a-z0-9_]+", bug.name) and bug.kind and bug.description, bug.name
        assert bug.targets and set(bug.targets) <= ours, (bug.name, set(bug.targets) - ours)


def _state(owner, key):
    if isinstance(owner, dict):
        return [(k, id(v)) for k, v in owner.items()]
    raw = vars(owner).get(key, _MISSING)
    return raw if raw is _MISSING else id(raw)


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_apply_patches_and_restores_exactly(bug):
    points = [(owner, key) for owner, key, _ in bug.make()]
    before = [_state(o, k) for o, k in points]
    with bug.apply():
        assert [_state(o, k) for o, k in points] != before
    assert [_state(o, k) for o, k in points] == before


def test_plant_checks_every_name_first_and_unwinds_in_order():
    from converters import bn_fold, bn_math
    original, table = vars(bn_fold)["bn_scale_shift"], list(bn_math.PRODUCER_KINDS.items())
    with pytest.raises(planted_bugs.UnknownPlantedBug) as e:
        planted_bugs.plant("bn_fold_no_eps, no_such_bug")
    assert "'no_such_bug'" in str(e.value) and "known: bn_fold_no_eps, " in str(e.value)
    assert vars(bn_fold)["bn_scale_shift"] is original
    # two bugs wrapping one method (each wraps what it finds), one in a dispatch table
    fold = vars(bn_fold.FoldBatchNorm)["_fold"]
    stack = planted_bugs.plant(["bn_fold_frozen", "bn_fold_shared_weight", "bn_fold_affine_rows", "bn_fold_no_eps"])
    assert vars(bn_fold.FoldBatchNorm)["_fold"] is not fold and vars(bn_fold)["bn_scale_shift"] is not original
    stack.close()
    assert vars(bn_fold.FoldBatchNorm)["_fold"] is fold and vars(bn_fold)["bn_scale_shift"] is original
    assert list(bn_math.PRODUCER_KINDS.items()) == table


def _doc_rows():
    text = (ROOT / "docs" / "planted_bugs.md").read_text()
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if re.match(r"\|\s*`[a-z0-9_]+`\s*\|", line)]


def test_the_doc_table_lists_the_catalogue():
    rows = _doc_rows()
    assert [r[0].strip("`") for r in rows] == [b.name for b in BUGS]
    for row, bug in zip(rows, BUGS):
        assert row[1] == bug.kind, bug.name
        assert row[2] == ", ".join(bug.targets), bug.name
        assert row[3].startswith("survives") == bool(bug.survives), bug.name


def _pytest_suites(plant, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GCVERIFY_PLANT"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    if plant:
        env["GCVERIFY_PLANT"] = plant
    cmd = [sys.executable, "-m", "pytest", "suites", "--gc-converters=bn_fold", "--gc-models=lenet",
           "--gc-device=cpu", "--gc-speed-repeats=1", "-p", "no:cacheprovider", "-q"] + list(args)
    return subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)


def test_gcverify_plant_turns_the_matrix_red_in_xdist_workers_and_only_then():
    planted = _pytest_suites("bn_fold_no_eps", "-n", "1")
    assert planted.returncode == 1, planted.stdout[-2000:] + planted.stderr[-2000:]
    assert "1 failed" in planted.stdout and "[numeric] outputs differ" in planted.stdout
    clean = _pytest_suites(None)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    assert "1 passed" in clean.stdout


def test_an_unknown_planted_name_is_a_usage_error():
    result = _pytest_suites("bn_fold_no_eps,nope", "--collect-only")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "GCVERIFY_PLANT: unknown planted bug 'nope'; known: bn_fold_no_eps" in result.stderr
