"""Fixed-point weights and activations: grid, no clipping, error shrinking with n, seed 003."""
import nnabla as nn
import nnabla.function as nnabla_function
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters import quant_math as qm
from converters.fixed_point import ACTIVATION_SIGN, FixedPointActivations, FixedPointWeights
from converters.graph_view import GraphView
from gcverify.testing import zoo_model as build
from gcverify.testing import (assert_untouched, conv_affine_graph, count, functions_of,
                           private_graph, rel_error, snapshot)

INNER = ("Convolution", "Affine", "Deconvolution", "DepthwiseConvolution",
         "DepthwiseDeconvolution")


def _weight_grids(outputs):
    """(original, quantized, delta broadcastable to it) per weight and bias of inner products."""
    found = []
    for f in GraphView(outputs, {}).functions:
        if f.info.type_name not in INNER:
            continue
        q = f.inputs[1]
        if q.parent.info.type_name == "FixedPointQuantize":  # per tensor
            w, delta = q.parent.inputs[0], np.float32(q.parent.info.args["delta"])
        else:  # per channel: Mul2(FixedPointQuantize(Mul2(W, 1/d)), d)
            fpq, delta_var = q.parent.inputs
            w, delta = fpq.parent.inputs[0].parent.inputs[0], delta_var.d
        found.append((w, q, delta))
        if len(f.inputs) > 2:  # biases: always one step per tensor
            qb = f.inputs[2]
            found.append((qb.parent.inputs[0], qb, np.float32(qb.parent.info.args["delta"])))
    return found


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("n", [4, 8])
def test_lenet_weights_sit_on_the_grid_without_clipping(n, per_channel):
    model = build("lenet")
    snap = snapshot(model)
    conv = GC.FixedPointWeightConverter(name="fp", params=model.params, n=n,
                                        per_channel=per_channel)
    y = conv.convert(model.outputs[0], model.inputs)
    assert conv.last_result.counts["quantized"] == 4
    grids = _weight_grids([y])
    assert len(grids) == 4 + 2  # 4 weights, 2 biases
    nn.forward_all([q for _, q, _ in grids])
    levels = qm.fixed_point_levels(n)
    for w, q, delta in grids:
        steps = q.d / delta
        np.testing.assert_array_equal(steps, np.round(steps))  # integer multiples of delta
        assert np.all(np.abs(q.d - w.d) <= delta / 2)  # auto delta: nothing clips
        delta = np.asarray(delta, np.float64)
        assert delta.ndim == (w.ndim if per_channel and w.ndim > 1 else 0)
        reduce = tuple(a for a in range(delta.ndim) if delta.shape[a] == 1) or None
        assert np.all(levels * delta >= np.abs(w.d).max(axis=reduce, keepdims=True))
    assert_untouched(model, snap)


def test_per_channel_steps_follow_each_channel():
    model = build("lenet")
    y = GC.FixedPointWeightConverter(params=model.params, n=8, per_channel=True).convert(
        model.outputs[0], model.inputs)
    (w, q, delta), = [g for g in _weight_grids([y]) if g[0] == model.params["conv1/conv/W"]]
    assert delta.shape == (16, 1, 1, 1)
    top = np.abs(w.d).reshape(16, -1).max(axis=1)
    levels = qm.fixed_point_levels(8)
    d = delta.ravel().astype(np.float64)
    assert np.all(levels * d >= top) and np.all(levels * d / 2 < top)  # smallest per channel
    assert len(set(d)) > 1  # the channels really differ


def test_deconvolution_and_depthwise_steps_are_per_output_channel():
    def graph(rng):
        x = nn.Variable.from_numpy_array(rng.normal(size=(1, 3, 6, 6)).astype(np.float32))
        h = PF.deconvolution(x, 5, (3, 3), name="deconv")  # W (3, 5, 3, 3): outputs on axis 1
        return [x], [PF.depthwise_convolution(h, (3, 3), name="dw")]  # W (5, 3, 3)
    (x,), (y,), params = private_graph(graph)
    out, = FixedPointWeights(n=6, per_channel=True)(y, params=params).outputs
    grids = {tuple(w.shape): (q, delta) for w, q, delta in _weight_grids([out])}
    assert np.shape(grids[(3, 5, 3, 3)][1]) == (1, 5, 1, 1)
    assert np.shape(grids[(5, 3, 3)][1]) == (5, 1, 1)
    nn.forward_all([q for q, _ in grids.values()])
    for q, delta in grids.values():
        np.testing.assert_array_equal(q.d / delta, np.round(q.d / delta))


def test_activation_sign_table_names_real_nnabla_functions():
    assert [k for k in ACTIVATION_SIGN if not hasattr(nnabla_function, k)] == []


def test_lenet_output_error_shrinks_with_bits():
    model = build("lenet")
    ref = model.forward()[0]
    errors = {}
    for n in (8, 12, 16):
        y = GC.FixedPointWeightConverter(params=model.params, n=n).convert(model.outputs[0])
        errors[n] = rel_error(model.forward([y])[0], ref)
    # first order, the output error scales with delta = 2^-n: 4 more bits, ~16x smaller
    assert 0 < errors[16] < errors[12] / 2 ** 4 * 8 and errors[12] < errors[8] / 2 ** 4 * 8, errors


def test_resnet50_output_error_shrinks_with_bits():
    model = build("resnet50")
    snap = snapshot(model)
    ref = model.forward()[0]
    errors = {}
    for n in (8, 16):
        y = GC.GraphConverter([GC.FixedPointWeightModifier(n=n)], params=model.params).convert(
            model.outputs[0])
        errors[n] = rel_error(model.forward([y])[0], ref)
    assert count([y], "FixedPointQuantize") == 54 + 1  # 53 conv weights, fc weight and bias
    assert 0 < errors[16] < errors[8] / 2 ** 8 * 8 and errors[8] < 0.1, errors
    assert_untouched(model, snap)


def test_shared_and_computed_weights():
    rng = np.random.RandomState(0)
    x = nn.Variable.from_numpy_array(rng.normal(size=(2, 4)).astype(np.float32))
    w = nn.Variable.from_numpy_array(rng.normal(size=(4, 4)).astype(np.float32))
    y = F.affine(F.affine(x, w), w)  # one weight, two users
    z = F.affine(x, F.mul_scalar(w, 2.0))  # a weight computed by the graph
    res = FixedPointWeights(n=8)([y, z], params={})
    assert count(res.outputs, "FixedPointQuantize") == 1  # quantized once for both users
    assert res.counts == {"quantized": 2, "kept": 1}
    assert "give a fixed delta" in res.reasons("kept")[0].reason
    res = FixedPointWeights(n=8, delta=2 ** -5)([z], params={})
    assert res.counts == {"quantized": 1}


def _relu_graph(activation):
    return private_graph(lambda rng: conv_affine_graph(rng, activation=activation))


def test_relu_becomes_an_unsigned_quantizer_exactly():
    (x,), (y,), params = _relu_graph(F.relu)
    res = FixedPointActivations(n=4, delta=0.25)(y, params=params)
    out, = res.outputs
    assert count([out], "ReLU") == 0 and res.counts == {"replaced": 1}
    fpq, = functions_of([out], "FixedPointQuantize")
    assert fpq.info.args["sign"] is False and fpq.info.args["n"] == 4
    # the claim: an unsigned quantizer clips at 0, so FPQ(ReLU(h)) == FPQ(h)
    conv = y.parent.inputs[0].parent.inputs[0]
    explicit = F.affine(F.fixed_point_quantize(F.relu(conv), sign=False, n=4, delta=0.25),
                        *y.parent.inputs[1:])
    nn.forward_all([out, explicit, fpq.outputs[0]])
    np.testing.assert_array_equal(out.d, explicit.d)
    q = fpq.outputs[0].d
    assert q.min() == 0 and q.max() == 15 * 0.25 and np.array_equal(q / 0.25, np.round(q / 0.25))


def test_other_activations_are_kept_and_followed_by_a_signed_quantizer():
    (x,), (y,), params = _relu_graph(F.tanh)
    out, = FixedPointActivations(functions=["Tanh"], n=8, delta=2 ** -6)(y, params=params).outputs
    fpq, = functions_of([out], "FixedPointQuantize")
    assert count([out], "Tanh") == 1 and fpq.info.args["sign"] is True
    assert fpq.inputs[0].parent.info.type_name == "Tanh"


def test_seed_003_sequence_on_lenet():
    model = build("lenet")
    snap = snapshot(model)
    y, x = model.outputs[0], model.inputs[0]
    ref = model.forward()[0]
    # exactly the seed's calls (no params: weights are found by their input slots)
    converter_w = GC.FixedPointWeightConverter(name="fixed-point-lenet")
    converter_a = GC.FixedPointActivationConverter(name="fixed-point-lenet")
    converter = GC.SequentialConverter([converter_w, converter_a])
    yy = converter.convert(y, [x])
    hist = GraphView(yy, {}).histogram()
    assert hist["ReLU"] == 0 and hist["FixedPointQuantize"] == 6 + 3  # 4 W, 2 b, 3 ReLU
    assert converter.last_result.counts == {"quantized": 4, "replaced": 3}
    # the sequence is the two conversions one after the other, and the Modifier API agrees
    one_by_one = converter_a.convert(converter_w.convert(y, [x]), [x])
    modifiers = GC.GraphConverter([GC.FixedPointWeightModifier(),
                                   GC.FixedPointActivationModifier()], params=model.params)
    out, again, via_modifiers = model.forward([yy, one_by_one, modifiers.convert(y)])
    np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(out, via_modifiers)
    assert 0 < rel_error(out, ref) < 0.2
    assert_untouched(model, snap)


@pytest.mark.parametrize("make", [
    lambda: GC.FixedPointWeightConverter(n=1),
    lambda: GC.FixedPointWeightConverter(n=0),
    lambda: GC.FixedPointWeightConverter(n=8.5),
    lambda: GC.FixedPointWeightConverter(delta=0),
    lambda: GC.FixedPointWeightConverter(delta=-0.5),
    lambda: GC.FixedPointWeightConverter(bias_n=1),
    lambda: GC.FixedPointWeightConverter(functions=["Relu"]),
    lambda: GC.FixedPointWeightModifier(functions=["ReLU"]),
    lambda: GC.FixedPointActivationConverter(n=1),
    lambda: GC.FixedPointActivationConverter(delta=0.0),
    lambda: GC.FixedPointActivationConverter(delta=None),
    lambda: GC.FixedPointActivationModifier(functions=["Relu"]),
    lambda: GC.FixedPointActivationModifier(functions=[]),
])
def test_bad_arguments_fail_at_construction(make):
    with pytest.raises(ValueError, match=r"\bn\b|bias_n|delta|unknown function name 'Relu'|"
                                         r"unknown function name 'ReLU'|at least one"):
        make()
