"""The README's downstream example (examples/downstream) runs as a project of its own."""
import pathlib

from gcverify.testing import SUITE_SOURCE as SUITE

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent.parent / "examples" / "downstream"


def test_downstream_example_passes_as_documented(pytester):
    for name in ("conftest.py", "test_my_net.py"):
        (pytester.path / name).write_text((EXAMPLE / name).read_text())
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_bn_folding_is_exact_and_removes_every_bn PASSED*",
                                 "*test_channel_last_on_my_device?cpu? PASSED*"])


def test_downstream_example_model_joins_the_matrix(pytester):
    (pytester.path / "conftest.py").write_text((EXAMPLE / "conftest.py").read_text())
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--gc-models=my_net", "--gc-converters=bn_fold,nnabla_bn_fold")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*gcverify matrix*", "bn_fold * my_net * cpu * passed*"])
