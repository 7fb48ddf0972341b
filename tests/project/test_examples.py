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


def test_downstream_function_modifiers_are_verified_in_the_matrix(pytester):
    """NNabla's documentation example (ReLU -> LeakyReLU) and a subgraph replacement (x *
    sigmoid(x) -> Swish), user FunctionModifiers run unchanged, are rows of the matrix: the
    first exactly against the network written with LeakyReLU (its reference), the second
    against the network itself."""
    (pytester.path / "conftest.py").write_text((EXAMPLE / "conftest.py").read_text())
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--gc-models=my_net", "--gc-converters=relu_to_leaky_relu,silu_to_swish")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["relu_to_leaky_relu * my_net * cpu * passed * -1 ReLU, +1 LeakyReLU *exact*",
                                 "silu_to_swish * my_net * cpu * passed * -1 Mul2, -1 Sigmoid*"])


def test_a_wrong_user_modifier_fails_its_row(pytester):
    source = (EXAMPLE / "conftest.py").read_text()
    planted = source.replace("return F.leaky_relu(x)", "return F.leaky_relu(x, 0.2)")  # not the network's
    assert planted != source
    (pytester.path / "conftest.py").write_text(planted)
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--gc-models=my_net", "--gc-converters=relu_to_leaky_relu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*[[]numeric[]] outputs differ*"])
