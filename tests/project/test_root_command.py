"""The user's own command, typed in the project root, runs the verification matrix (suites/),
not our unit tests: ``pytest --gc-models=resnet50 --gc-device=cudnn``."""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _pytest_in_root(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GCVERIFY_PLANT"))}
    cmd = [sys.executable, "-m", "pytest", "--gc-models=resnet50", "--gc-device=cudnn",
           "-p", "no:cacheprovider", "-p", "no:hypothesispytest"] + list(args)
    return subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600)


def test_the_literal_command_collects_the_matrix_rows_of_that_model_and_device():
    done = _pytest_in_root("--collect-only", "-q")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(ids) > 20
    assert all(i.startswith("suites/test_conversions.py::test_conversion[") and i.endswith("-resnet50-cudnn]")
               for i in ids), [i for i in ids if not i.endswith("-resnet50-cudnn]")][:3]


def test_without_cudnn_its_rows_skip_with_the_reason():
    try:
        present = importlib.util.find_spec("nnabla_ext.cudnn") is not None
    except ModuleNotFoundError:  # no nnabla_ext at all
        present = False
    if present:
        pytest.skip("nnabla_ext.cudnn is installed: the rows run here (the collection test still holds)")
    done = _pytest_in_root("--gc-converters=bn_fold,identity", "-rs")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 skipped" in done.stdout and "cudnn unavailable: nnabla_ext.cudnn is not installed" in done.stdout
