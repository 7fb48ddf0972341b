"""Quantize/dequantize insertion: exact against a numpy reference, error shrinking with n."""
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

import converters as GC
from converters import quant_math as qm
from converters.graph_view import GraphView
from converters.qdq import QuantizeDequantize
from converters.statistics import RecordStatistics, StatisticsRecorder
from gcverify.testing import zoo_model as build
from gcverify.testing import (assert_untouched, conv_affine_graph, count, private_graph,
                           rel_error, snapshot)


def _calibrate(model):
    """Statistics of the inputs of every inner-product layer, from one calibration forward."""
    stats = GC.StatisticsConverter(name="calib", params=model.params)
    y = stats.convert(model.outputs[0], model.inputs)
    model.feed()
    stats.recorder.forward(y)
    return stats.recorder


def _dq_activation(rec, v, values, n, symmetric):
    scale, zp = qm.linear_scale(*rec.range(v), n, symmetric)
    return qm.quantize_dequantize(values, scale, zp, n, symmetric)


def _dq_weight(w, out_axes, n, symmetric, per_channel):
    values = w.d
    if symmetric:
        top = qm.abs_max(values, out_axes if per_channel else None)
        lo, hi = -top, top
    else:
        others = tuple(a for a in range(w.ndim) if a not in out_axes) if per_channel else None
        lo, hi = values.min(axis=others, keepdims=True), values.max(axis=others, keepdims=True)
    scale, zp = qm.linear_scale(lo, hi, n, symmetric)
    return qm.quantize_dequantize(values, scale, zp, n, symmetric)


@pytest.mark.parametrize("n, symmetric, per_channel", [
    (8, True, True), (8, False, False), (6, True, False), (6, False, True)])
def test_layers_compute_on_exactly_the_dequantized_values(n, symmetric, per_channel):
    (x,), (y,), params = private_graph(lambda rng: conv_affine_graph(rng, activation=F.relu))
    rec = StatisticsRecorder()
    rec.forward(RecordStatistics(rec)(y, params=params).outputs)
    res = QuantizeDequantize(rec, n=n, symmetric=symmetric, per_channel=per_channel)(
        y, params=params)
    assert res.counts == {"quantized": 2}
    assert count(res.outputs, "QuantizeLinear") == (4 if n == 8 else 0)
    # reference: each layer on numpy-quantized input and weight, through the same NNabla ops
    fc = y.parent
    conv = fc.inputs[0].parent.inputs[0].parent
    const = nn.Variable.from_numpy_array
    h = F.relu(F.convolution(const(_dq_activation(rec, x, x.d, n, symmetric)),
                             const(_dq_weight(conv.inputs[1], (0,), n, symmetric, per_channel)),
                             conv.inputs[2], pad=(1, 1)))
    h.forward()
    expected = F.affine(const(_dq_activation(rec, fc.inputs[0], h.d, n, symmetric)),
                        const(_dq_weight(fc.inputs[1], (1,), n, symmetric, per_channel)),
                        fc.inputs[2])
    nn.forward_all([expected] + res.outputs)
    np.testing.assert_array_equal(res.outputs[0].d, expected.d)


def test_lenet_error_shrinks_with_bits_and_weights_only_without_ranges():
    model = build("lenet")
    snap = snapshot(model)
    ref = model.forward()[0]
    rec = _calibrate(model)
    errors = {n: rel_error(model.forward([GC.QuantizeDequantizeConverter(
        ranges=rec, n=n, params=model.params).convert(model.outputs[0], model.inputs)])[0], ref)
        for n in (8, 12, 16)}
    # the scales shrink as 2^-n: first order, 4 more bits make the error ~16x smaller
    assert 0 < errors[16] < errors[12] / 2 ** 4 * 8 and errors[12] < errors[8] / 2 ** 4 * 8
    weights_only = GC.GraphConverter([GC.QuantizeDequantizeModifier()], params=model.params)
    y = weights_only.convert(model.outputs[0])
    assert count([y], "QuantizeLinear") == 4 and weights_only.last_result.counts == {"quantized": 4}
    assert_untouched(model, snap)


def test_missing_ranges_are_noted_and_left_float():
    model = build("lenet")
    x = model.inputs[0]
    rec = _calibrate(model)
    ranges = {v: rec.range(v) for v, _ in rec.items() if v != x}
    res = QuantizeDequantize(ranges)(model.outputs, params=model.params)
    kept, = res.reasons("kept")
    assert "conv1" in kept.function and "no recorded range" in kept.reason
    assert count(res.outputs, "QuantizeLinear") == 4 + 3


def test_resnet50_int8_and_16_bit_errors():
    model = build("resnet50")
    snap = snapshot(model)
    ref = model.forward()[0]
    rec = _calibrate(model)
    view = GraphView(model.outputs, model.params)
    inner = [f for f in view.functions if f.info.type_name in ("Convolution", "Affine")]
    errors = {}
    for n in (8, 16):
        conv = GC.QuantizeDequantizeConverter(ranges=rec, n=n, params=model.params)
        y = conv.convert(model.outputs[0], model.inputs)
        errors[n] = rel_error(model.forward([y])[0], ref)
        assert conv.last_result.counts == {"quantized": len(inner)}
    # 50 distinct layer inputs (block inputs feed two convolutions) + 54 weights, once each
    assert count([GC.QuantizeDequantizeConverter(ranges=rec, params=model.params).convert(
        model.outputs[0])], "QuantizeLinear") == 50 + 54
    assert errors[8] < 0.1 and 0 < errors[16] < errors[8] / 2 ** 8 * 8, errors
    assert_untouched(model, snap)


@pytest.mark.parametrize("make, error", [
    (lambda: GC.QuantizeDequantizeConverter(n=1), r"\bn\b"),
    (lambda: GC.QuantizeDequantizeModifier(n=40), r"\bn\b"),
    (lambda: GC.QuantizeDequantizeConverter(functions=["ReLU"]), "unknown function name 'ReLU'"),
    (lambda: GC.QuantizeDequantizeModifier(ranges=[(0, 1)]), "ranges must be"),
])
def test_bad_arguments_fail_at_construction(make, error):
    with pytest.raises((ValueError, TypeError), match=error):
        make()
