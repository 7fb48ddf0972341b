"""A downstream project uses the fixtures in its own tests, with its own registered model."""
import pytest

from gcverify.testing import SUITE_SOURCE as SUITE

DOWNSTREAM_TESTS = '''
import nnabla as nn
import pytest

import converters as GC


def test_fold_my_model(gc_model, gc_device, gc_convert, gc_assert_equivalent, gc_count_functions):
    with nn.context_scope(gc_device.context()):
        model = gc_model("tiny")
        assert gc_count_functions(model.outputs, "BatchNormalization") == 1
        folded = gc_convert("bn_fold", model)
        assert gc_count_functions(folded, "BatchNormalization") == 0
        assert folded.seconds is not None
        result = gc_assert_equivalent(model, folded)
        assert result.figures["max_abs_error"] < 1e-3


def test_my_own_converter_callable(gc_model, gc_convert, gc_assert_equivalent):
    model = gc_model("tiny")
    def linearize(m):
        c = GC.BatchNormalizationLinearConverter(params=m.params)
        return c.convert(list(m.outputs), list(m.inputs))
    gc_assert_equivalent(model, gc_convert(linearize, model), tolerance={"rtol": 1e-3})


def test_registered_converter_by_name(gc_model, gc_convert, gc_count_functions):
    converted = gc_convert("relu_to_leaky", gc_model("tiny"))
    assert gc_count_functions(converted)["LeakyReLU"] == 1


def test_models_are_fresh_copies(gc_model):
    a, b = gc_model("tiny"), gc_model("tiny")
    a.params["c2/conv/W"].d *= 0
    assert abs(b.params["c2/conv/W"].d).sum() > 0


def test_broken_conversion_is_reported(gc_model, gc_assert_equivalent):
    model = gc_model("lenet")
    broken = gc_model("lenet")
    broken.params["conv2/conv/W"].d *= 1.01
    from converters.graph_view import GraphView
    old, new = GraphView(model.outputs).functions, GraphView(broken.outputs).functions
    var_map = {f.outputs[0]: g.outputs[0] for f, g in zip(old, new)}
    from gcverify.core.conversion import Conversion
    gc_assert_equivalent(model, Conversion(broken.outputs, broken.inputs, var_map))
'''


@pytest.fixture
def downstream(pytester, downstream_conftest):
    pytester.makeconftest(downstream_conftest)
    pytester.makepyfile(test_downstream=DOWNSTREAM_TESTS)
    return pytester


def test_downstream_fixtures(downstream):
    result = downstream.runpytest("-v")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "*test_fold_my_model?cpu? PASSED*",
        "*AssertionError: graphs are not equivalent on model 'lenet'",
        "*[[]numeric] outputs differ: max abs *",
        "*first divergence at Convolution 'conv2/conv' (output 4x16x11x11)*",
        "*would pass at *x the noise floor (the limit is 4x)*",
    ])
    assert "gcverify/api.py" not in result.stdout.str()  # helpers hide their frames


def test_downstream_device_parametrisation_skips_missing_cudnn(downstream):
    result = downstream.runpytest("-k", "fold_my_model", "--gc-device=both", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*cudnn unavailable*"])


def test_a_projects_default_models_replace_the_zoos_default_set(downstream):
    downstream.makepyfile(test_suite=SUITE)
    result = downstream.runpytest("--collect-only", "-q", "--gc-converters=identity")
    ids = {line.split("[")[1].rstrip("]") for line in result.outlines if "test_conversion[" in line}
    assert ids == {"identity-tiny-cpu"}  # its default=True model, not the zoo's seven besides
    result = downstream.runpytest("--collect-only", "-q", "--gc-converters=identity", "--gc-models=tiny,lenet")
    ids = {line.split("[")[1].rstrip("]") for line in result.outlines if "test_conversion[" in line}
    assert ids == {"identity-tiny-cpu", "identity-lenet-cpu"}  # the zoo's are still there by name


def test_the_fixtures_copy_constants_so_a_conversion_that_drops_a_mask_fails(pytester):
    pytester.makepyfile(test_mask='''
import nnabla as nn
import numpy as np
import pytest

import converters as GC
from converters.rewrite import GraphPass


class ZeroMask(GraphPass):
    """Reads zeros where the attention model reads its causal mask (a constant)."""

    def input_map(self, view, b, plan):
        return {v: nn.Variable.from_numpy_array(np.zeros(v.shape, np.float32))
                for v in view.inputs if tuple(v.shape) == (1, 8, 8)}


def test_identity_is_equivalent(gc_model, gc_convert, gc_assert_equivalent):
    model = gc_model("attention")
    gc_assert_equivalent(model, gc_convert("identity", model), tolerance="exact")


def test_dropping_the_mask_is_caught(gc_model, gc_assert_equivalent):
    model = gc_model("attention")
    y = GC.Converter(passes=[ZeroMask()], params=model.params).convert(model.outputs, model.inputs)
    with pytest.raises(AssertionError, match="outputs differ"):
        gc_assert_equivalent(model, y)
''')
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=2)
