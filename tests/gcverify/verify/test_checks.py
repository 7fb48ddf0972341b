"""The checks of gcverify.checks on arrays and small real graphs (no timing assertions)."""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from converters.graph_view import GraphView
from gcverify.verify.snapshot import Snapshot
from gcverify.verify.case import untouched_check
from gcverify.verify.numeric import compare_arrays, locate_divergence, numeric_check
from gcverify.verify.results import MAX_LINES
from gcverify.verify.structure import layer_check
from gcverify.core.expectations import Functions, Removes, Speed, Tolerance, TOLERANCES, Unchanged
from gcverify.verify.model_copy import copy_model
from gcverify.core.model import Model, build_privately, seeded_inputs
from gcverify.zoo import randomize_parameters

F32 = TOLERANCES["float32-fixed"]  # the fixed one: these tests are about the mechanics


def test_identical_arrays_pass_with_zero_error(rng):
    e = rng.normal(0, 100, (3, 4)).astype(np.float32)
    d = compare_arrays(e.copy(), e, TOLERANCES["exact"])
    assert d.passed and d.max_abs == 0 and d.mismatches == 0 and d.first_index is None


def test_one_bad_element_is_located_and_counted(rng):
    e = rng.normal(0, 1000, (2, 5, 6))
    a = e.copy()
    a[1, 3, 2] += 1.0  # 1e-3 of the scale: beyond float32's atol of 1e-5 * max|e|
    d = compare_arrays(a, e, F32)
    assert not d.passed
    assert d.mismatches == 1 and d.size == e.size
    assert d.first_index == (1, 3, 2)
    assert d.max_abs == pytest.approx(1.0)
    assert d.scale == pytest.approx(np.abs(e).max())


def test_needed_tolerances_are_the_smallest_that_pass(rng):
    e = rng.normal(0, 10, (50,))
    a = e + rng.normal(0, 1e-2, e.shape)
    tol = Tolerance(rtol=1e-4, atol=1e-5)
    d = compare_arrays(a, e, tol)
    assert not d.passed
    # With the reported atol (same rtol) it passes; a bit less and it fails again.
    assert compare_arrays(a, e, Tolerance(1e-4, d.needed_atol * 1.0001)).passed
    assert not compare_arrays(a, e, Tolerance(1e-4, d.needed_atol * 0.99)).passed
    assert compare_arrays(a, e, Tolerance(d.needed_rtol * 1.0001, 1e-5)).passed
    assert not compare_arrays(a, e, Tolerance(d.needed_rtol * 0.99, 1e-5)).passed


def test_nan_on_one_side_and_shape_mismatch_fail(rng):
    e = rng.normal(size=(4,))
    a = e.copy()
    a[2] = np.nan
    d = compare_arrays(a, e, F32)
    assert not d.passed and d.first_index == (2,)
    bad = compare_arrays(e.reshape(2, 2), e, F32)
    assert not bad.passed and "shape" in bad.problem


def test_equal_infinities_agree_and_unequal_ones_do_not(rng):
    # a Log of an exact zero is -inf in both graphs: no difference, and no false alarm
    e = rng.normal(size=(6,))
    e[1], e[4] = -np.inf, np.inf
    assert compare_arrays(e.copy(), e, F32).passed
    a = e.copy()
    a[4] = -np.inf
    d = compare_arrays(a, e, F32)
    assert not d.passed and d.first_index == (4,)


def test_outputs_that_cannot_be_compared_fail_with_a_verdict(rng):
    # every failing output has the wrong shape (a layout pass that forgot its final
    # transpose): the check must fail with a message, not crash looking for a tolerance
    expected = [rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3))]
    actual = [np.transpose(expected[0], (0, 2, 3, 1)), expected[1]]
    for tol in (F32, TOLERANCES["quantizer"], Tolerance(noise=4.0)):
        result = numeric_check(actual, expected, tol, noise=[1e-7, 1e-7])
        assert not result.passed
        assert "shape" in result.message() and "no tolerance would pass" in result.message()


def test_rms_statistic_bounds_quantizer_error(rng):
    e = rng.normal(0, 1, (1000,))
    a = e + rng.normal(0, 0.05, e.shape)  # ~5% relative rms
    assert compare_arrays(a, e, TOLERANCES["quantizer"]).passed
    assert not compare_arrays(e + rng.normal(0, 0.3, e.shape), e, TOLERANCES["quantizer"]).passed


def test_numeric_message_is_bounded_and_names_the_numbers(rng):
    expected = [rng.normal(0, 1, (8, 8)) for _ in range(20)]
    actual = [x + 1.0 for x in expected]
    result = numeric_check(actual, expected, F32)
    assert not result.passed
    text = result.message()
    assert "max abs 1" in text and "would pass with atol >=" in text
    assert len(text.splitlines()) <= MAX_LINES + 2
    assert result.figures["mismatches"] == 20 * 64
    assert result.figures["needed_atol"] > 0


def _conv_bn_relu_conv(x):
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1")
    h = F.relu(PF.batch_normalization(h, batch_stat=False, name="bn1"))
    return PF.convolution(h, 2, (3, 3), pad=(1, 1), name="c2")


def _net(seed=0):
    x = nn.Variable((2, 3, 8, 8))
    y, params = build_privately(_conv_bn_relu_conv, x)
    randomize_parameters([y], params, seed)
    return Model("net", [x], [y], seeded_inputs([x], seed), params)


def test_layer_check_reports_histograms_and_expectations():
    m = _net()
    view = GraphView(m.outputs, m.params)
    same = layer_check(view, view, [Unchanged(), Removes(Functions("ReLU"))])
    assert not same.passed
    assert "ReLU: 1 -> 1 (1 left that should be gone)" in same.message()
    assert "ReLU #2 left without a reason (the verifier finds nothing that stops converting it)" \
        in same.message()
    assert same.figures["histogram_before"]["Convolution"] == 2
    assert layer_check(view, view, [Unchanged()]).passed


def test_divergence_names_the_first_changed_function():
    m = _net()
    copy = copy_model(m)
    copy.params["c2/conv/W"].d *= 1.5  # only the last convolution differs
    view = GraphView(m.outputs, m.params)
    copy_view = GraphView(copy.outputs, copy.params)
    var_map = {f.outputs[0]: g.outputs[0] for f, g in zip(view.functions, copy_view.functions)}

    def feed():
        m.feed()
        copy.inputs[0].d = m.input_data[0]
    where = locate_divergence(m.outputs, copy.outputs, var_map, feed, F32, view.describe)
    assert where.startswith("first divergence at Convolution 'c2/conv'")


def test_untouched_check_sees_parameter_and_scope_changes():
    m = _net()
    before = Snapshot.take(m.outputs, m.params, m.inputs)
    assert untouched_check(before, m).passed
    mean = m.params["bn1/bn/mean"].d.copy()
    m.params["bn1/bn/mean"].d += 1
    changed = untouched_check(before, m)
    assert not changed.passed and "bn1/bn/mean" in changed.summary
    m.params["bn1/bn/mean"].d = mean
    try:
        nn.parameter.set_parameter("gcverify_test_leak", nn.Variable((1,)))
        leaked = untouched_check(before, m)
        assert not leaked.passed and "added to the global scope: gcverify_test_leak" in leaked.message()
    finally:
        with nn.parameter_scope("", nn.parameter.root_scope):
            nn.parameter.root_scope.pop("gcverify_test_leak", None)
