"""Channel-last / channel-first conversion on small graphs covering every layout class.

``check_layout_conversion`` is the contract, reused by the zoo tests: the channel-last graph
(evaluated on CPU through the emulation) matches the original; no channel-first
convolution/pooling is left; the way back is exact, runs on CPU as is and has no
channel-last function; the original graph and its parameter values are unchanged.
"""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.graph_view import GraphView
from converters.layout import ToChannelLast
from converters.layout_emulation import cpu_runnable
from converters.layout_table import CHANNEL_LAST_TYPES
from gcverify.core.model import build_privately, seeded_inputs
from gcverify.testing import zoo_model
from gcverify.zoo import ZOO
from gcverify.zoo.seeding import randomize_parameters


def build(graph, shapes, seed=0):
    """Build ``graph(*inputs)`` in a private scope with seeded parameters and input data."""
    rng = np.random.RandomState(seed)
    inputs = [nn.Variable(s) for s in shapes]
    outputs, params = build_privately(graph, *inputs)
    outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
    for v in params.values():  # parameters randomize_parameters does not know (PReLU...)
        v.d = rng.uniform(0.5, 1.5, v.shape)
    randomize_parameters(outputs, params, seed=seed)
    return inputs, outputs, seeded_inputs(shapes, seed + 1), params


def forward(outputs, feeds):
    for x, d in feeds:
        x.d = d
    nn.forward_all(outputs)
    return [o.d.copy() for o in outputs]


def to_last(d):
    return np.moveaxis(d, 1, -1)


def channel_first_left(outputs):
    """Functions that have a channel-last form but still run channel-first."""
    return [f.info.type_name for f in GraphView(outputs, {}).functions
            if f.info.type_name in CHANNEL_LAST_TYPES and not f.info.args.get("channel_last", False)]


def check_layout_conversion(inputs, outputs, data, params, listed=None, atol=1e-5, rtol=1e-4):
    """The whole contract on one graph; returns (channel-last outputs, Rewrite)."""
    listed = list(inputs if listed is None else listed)
    feeds = list(zip(inputs, data))
    expected = forward(outputs, feeds)
    values = {k: v.d.copy() for k, v in params.items()}
    histogram = GraphView(outputs, params).histogram()

    modifier = GC.ChannelLastModifier(listed)
    converter = GC.GraphConverter([modifier], params=params)
    converted = converter.convert(outputs)
    result = converter.last_result
    assert len(modifier.inputs_cl) == len(listed)
    cl_feeds = [(modifier.inputs_cl[listed.index(x)], to_last(d)) if x in listed else (x, d)
                for x, d in feeds]
    layouts = ToChannelLast(listed).output_layouts(outputs, params)
    got = forward(cpu_runnable(converted, {**params, **result.new_parameters}), cl_feeds)
    for e, g, p in zip(expected, got, layouts):
        np.testing.assert_allclose(g, np.transpose(e, p), atol=atol, rtol=rtol)
    assert channel_first_left(converted) == []

    back_modifier = GC.ChannelFirstModifier(modifier.inputs_cl)
    back = GC.GraphConverter([back_modifier], params={**params, **result.new_parameters}).convert(converted)
    back_feeds = [(back_modifier.inputs_cf[listed.index(x)], d) if x in listed else (x, d)
                  for x, d in feeds]
    for e, g in zip(expected, forward(back, back_feeds)):  # runs on CPU as is: no channel-last left
        assert np.array_equal(g, e), np.abs(g - e).max()
    assert not any(f.info.args.get("channel_last") for f in GraphView(back, {}).functions)

    assert GraphView(outputs, params).histogram() == histogram
    for k, v in params.items():
        assert np.array_equal(v.d, values[k]), k
    return converted, result


# --- graphs -----------------------------------------------------------------------------

def conv_first(x):
    return F.relu(PF.convolution(x, 6, (3, 3), pad=(1, 1), name="c"))


def odd_functions(x):
    """Softmax over channels, flatten, reductions, slices, pads, a transpose, a fenced
    GlobalAveragePooling and GroupNormalization, a per-channel parameter and an SE block."""
    h = PF.batch_normalization(PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c1"), batch_stat=False,
                               name="bn1")
    bias = nn.parameter.get_parameter_or_create("chan_bias", (1, 8, 1, 1))
    h = F.add2(h, bias)
    se = F.sigmoid(F.mean(h, axis=(2, 3), keepdims=True))
    h = F.mul2(h, se)
    soft = F.softmax(h, axis=1)
    sl = F.slice(F.pad(h, (1, 1, 2, 0)), (0, 1, 0), (8, 7, 8), (1, 2, 1))
    t = F.transpose(h, (0, 2, 3, 1))
    gap = F.global_average_pooling(h)
    gn = F.group_normalization(h, nn.parameter.get_parameter_or_create("gn_beta", (1, 8, 1, 1)),
                               nn.parameter.get_parameter_or_create("gn_gamma", (1, 8, 1, 1)),
                               num_groups=2, channel_axis=1)
    summed = F.sum(h, axis=1)
    mx = F.max(h, axis=(1, 2), with_index=True)[1]
    slope = nn.parameter.get_parameter_or_create("slope", (8,))
    flat = PF.affine(F.reshape(F.prelu(h, slope), (h.shape[0], -1)), 5, name="fc_flat")
    fc = PF.affine(F.max_pooling(h, (2, 2)), 4, name="fc")
    return [soft, sl, t, gap, gn, summed, mx, flat, fc,
            F.concatenate(*F.split(F.flip(F.cumsum(h, axis=1), axes=(1, 3)), axis=1)[:3], axis=0),
            F.stack(h, F.relu(h), axis=1)]


def layers(x):
    """Deconvolution (grouped, output_padding), depthwise conv/deconv, grouped conv,
    Unpooling, Interpolate, Sum/AveragePooling, Concatenate on channels."""
    h = PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c1")
    d = PF.depthwise_convolution(h, (3, 3), pad=(1, 1), multiplier=2, name="dw")
    g = PF.convolution(d, 8, (3, 3), pad=(1, 1), group=4, name="grouped")
    up = PF.deconvolution(g, 6, (3, 3), stride=(2, 2), pad=(1, 1), output_padding=(1, 1), group=2, name="up")
    dd = PF.depthwise_deconvolution(F.unpooling(F.sum_pooling(g, (2, 2)), (2, 2)), (2, 2), stride=(2, 2),
                                    divisor=2, name="ddw")
    i = F.interpolate(F.average_pooling(up, (2, 2)), output_size=(16, 16), mode="linear")
    return F.concatenate(up, dd, i, axis=1)


def several(a, b, mask):
    """Two converted images, one unconverted input, three outputs (spatial and not)."""
    ha = PF.convolution(a, 4, (3, 3), pad=(1, 1), name="a")
    hb = PF.convolution(b, 4, (1, 1), name="b")
    s = F.add2(F.add2(ha, hb), mask)
    return [s, PF.affine(s, 3, name="head"), F.max_pooling(hb, (2, 2))]


@pytest.mark.parametrize("graph,shapes", [
    (conv_first, [(2, 3, 8, 8)]),
    (odd_functions, [(2, 3, 8, 8)]),
    (layers, [(2, 3, 8, 8)]),
])
def test_channel_last_matches_and_comes_back_exactly(graph, shapes):
    inputs, outputs, data, params = build(graph, shapes)
    check_layout_conversion(inputs, outputs, data, params)


def test_several_inputs_and_outputs_with_an_unconverted_input():
    inputs, outputs, data, params = build(several, [(2, 3, 8, 8), (2, 5, 8, 8), (2, 4, 8, 8)])
    converted, result = check_layout_conversion(inputs, outputs, data, params, listed=inputs[:2])
    assert [tuple(o.shape) for o in converted] == [tuple(o.shape) for o in outputs]
    assert inputs[2] not in result.input_map


def test_every_convertible_function_is_converted_and_counted():
    inputs, outputs, data, params = build(layers, [(2, 3, 8, 8)])
    converted, result = check_layout_conversion(inputs, outputs, data, params)
    cl = [f.info.type_name for f in GraphView(converted, {}).functions if f.info.args.get("channel_last")]
    assert sorted(cl) == sorted(["Convolution"] * 3 + ["Deconvolution"] * 2
                                + ["SumPooling", "Unpooling", "AveragePooling", "Interpolate"])
    assert result.counts["converted"] == len(cl)
    assert "DepthwiseConvolution" not in GraphView(converted, {}).histogram()


def test_odd_functions_are_fenced_or_adjusted_with_reasons():
    inputs, outputs, data, params = build(odd_functions, [(2, 3, 8, 8)])
    _, result = check_layout_conversion(inputs, outputs, data, params)
    fenced = " ".join(e.reason for e in result.reasons("fenced"))
    for name in ("GlobalAveragePooling", "GroupNormalization", "Reshape", "Max"):
        assert name in fenced
    adjusted = " ".join(e.function + " " + e.reason for e in result.reasons("adjusted"))
    for name in ("Softmax", "Slice", "Pad", "Affine", "Sum", "Split", "Stack", "PReLU", "CumSum", "Flip"):
        assert name in adjusted, name


def test_seed_example_and_inputs_cl_after_convert():
    inputs, outputs, data, params = build(conv_first, [(2, 3, 8, 8)])
    x, y = inputs[0], outputs[0]
    modifiers = [GC.ChannelLastModifier([x])]
    assert modifiers[0].inputs_cl is None
    yy = GC.GraphConverter(modifiers).convert(y)  # as in seed 000: names from the global scope
    x_cl = modifiers[0].inputs_cl[0]
    assert isinstance(yy, nn.Variable) and x_cl.shape == (2, 8, 8, 3) and yy.shape == (2, 6, 8, 8)
    assert yy.parent.info.type_name == "Transpose"  # the output is given back channel-first
    assert GraphView(yy, params).inputs == (x_cl,)


def test_user_given_inputs_cl_are_used():
    inputs, outputs, data, params = build(conv_first, [(2, 3, 8, 8)])
    mine = nn.Variable((2, 8, 8, 3))
    modifier = GC.ChannelLastModifier(inputs, inputs_cl=[mine])
    yy = GC.GraphConverter([modifier], params=params).convert(outputs)
    assert modifier.inputs_cl == [mine] and GraphView(yy, params).inputs == (mine,)


def test_outputs_left_channel_last_on_request():
    inputs, outputs, data, params = build(layers, [(2, 3, 8, 8)])
    expected = forward(outputs, zip(inputs, data))
    modifier = GC.ChannelLastModifier(inputs, restore_outputs=False)
    converter = GC.GraphConverter([modifier], params=params)
    yy = converter.convert(outputs)
    got = forward(cpu_runnable(yy, {**params, **converter.last_result.new_parameters}),
                  [(modifier.inputs_cl[0], to_last(data[0]))])
    assert yy[0].shape == to_last(expected[0]).shape
    np.testing.assert_allclose(got[0], to_last(expected[0]), atol=1e-5, rtol=1e-4)
    assert ToChannelLast(inputs, restore_outputs=False).output_layouts(outputs, params) == [(0, 2, 3, 1)]
    assert ToChannelLast(inputs).output_layouts(outputs, params) == [(0, 1, 2, 3)]
    # the way back from a channel-last output is exact too
    back = GC.ChannelFirstModifier(modifier.inputs_cl, restore_outputs=False)
    yb = GC.GraphConverter([back], params={**params, **converter.last_result.new_parameters}).convert(yy)
    assert np.array_equal(forward(yb, [(back.inputs_cf[0], data[0])])[0], expected[0])


def test_converted_graph_shares_nothing_with_the_original_but_leaves():
    inputs, outputs, data, params = build(odd_functions, [(2, 3, 8, 8)])
    before = GraphView(outputs, params).functions
    yy = GC.GraphConverter([GC.ChannelLastModifier(inputs)], params=params).convert(outputs)
    assert not set(GraphView(yy, params).functions) & set(before)
    assert GraphView(outputs, params).functions == before


@pytest.mark.parametrize("make,message", [
    (lambda x, y, p: [nn.Variable((2, 3, 8, 8))], "not an input of the graph"),
    (lambda x, y, p: [p["c/conv/W"]], "parameter"),
    (lambda x, y, p: [y.parent.inputs[0]], "computed by Convolution"),
    (lambda x, y, p: [x, x], "listed twice"),
])
def test_bad_inputs_get_clear_errors(make, message):
    inputs, outputs, data, params = build(conv_first, [(2, 3, 8, 8)])
    with pytest.raises(ValueError, match=message):
        GC.GraphConverter([GC.ChannelLastModifier(make(inputs[0], outputs[0], params))],
                          params=params).convert(outputs)


def test_inputs_without_spatial_axes_and_wrong_replacements_are_refused():
    inputs, outputs, data, params = build(lambda x: PF.affine(x, 3, name="fc"), [(2, 5)])
    with pytest.raises(ValueError, match=r"shape \(2, 5\).*spatial"):
        GC.GraphConverter([GC.ChannelLastModifier(inputs)], params=params).convert(outputs)
    inputs, outputs, data, params = build(conv_first, [(2, 3, 8, 8)])
    with pytest.raises(ValueError, match=r"expected \(2, 8, 8, 3\)"):
        GC.GraphConverter([GC.ChannelLastModifier(inputs, inputs_cl=[nn.Variable((2, 3, 8, 8))])],
                          params=params).convert(outputs)
    with pytest.raises(TypeError, match="not an nnabla.Variable"):
        GC.ChannelLastModifier([np.zeros((2, 3, 8, 8))])


def test_pooling_over_trailing_axes_of_a_5d_tensor_needs_no_transpose():
    def net(x):
        h = PF.convolution(x, 4, (3, 3, 3), pad=(1, 1, 1), name="c1")
        h = F.average_pooling(h, (2, 2))  # (N, C, D, H, W): pools H, W; N, C, D batch-like
        return PF.convolution(h, 3, (1, 1, 1), name="c2")
    inputs, outputs, data, params = build(net, [(1, 2, 4, 8, 8)])
    converted, _ = check_layout_conversion(inputs, outputs, data, params)
    histogram = GraphView(converted, {}).histogram()
    assert histogram["Transpose"] == 1 and converted[0].parent.info.type_name == "Transpose"


def test_base_axis_2_convolution_and_a_listed_input_feeding_it():
    def net(x):  # (N, T, C, H, W) with the convolution's channel at axis 2
        return F.relu(PF.convolution(x, 4, (3, 3), pad=(1, 1), base_axis=2, name="c"))
    inputs, outputs, data, params = build(net, [(2, 3, 5, 6, 6)])
    check_layout_conversion(inputs, outputs, data, params)


def test_a_shared_weight_is_transposed_once():
    def net(x):
        w = nn.parameter.get_parameter_or_create("shared", (3, 3, 3, 3))
        h = F.convolution(x, w, pad=(1, 1))
        return F.convolution(F.relu(h), w, pad=(1, 1))
    inputs, outputs, data, params = build(net, [(2, 3, 6, 6)])
    converted, result = check_layout_conversion(inputs, outputs, data, params)
    weights = {f.inputs[1] for f in GraphView(converted, {}).functions if f.info.type_name == "Convolution"}
    assert len(weights) == 1 and list(result.new_parameters) == ["shared/cl"]


# --- every default zoo network ------------------------------------------------------
SEQUENCE_MODELS = ("attention", "lstm")  # no convolution or pooling: nothing has a layout
STOCHASTIC_MODELS = ("noisy_dqn",)  # checked through gcverify's seeded copies, not here
# a BN on batch statistics updates its running statistics at every forward: gcverify's copies
TRAINING_MODELS = ("bn_training",)


@pytest.mark.parametrize("name", [s.name for s in ZOO if s.default and s.name not in SEQUENCE_MODELS + STOCHASTIC_MODELS + TRAINING_MODELS])
def test_zoo_network_channel_last(name):
    model = zoo_model(name, seed=3)
    tol = {"atol": 1e-5, "rtol": 1e-4, **model.tolerance_for("channel_last")}
    convertible = sum(n for t, n in GraphView(model.outputs, model.params).histogram().items()
                      if t in CHANNEL_LAST_TYPES)
    spatial = [x for x in model.inputs if len(x.shape) >= 3]  # a vector input has no layout
    converted, result = check_layout_conversion(model.inputs, model.outputs, model.input_data,
                                                model.params, listed=spatial, **tol)
    now_channel_last = [f for f in GraphView(converted, {}).functions if f.info.args.get("channel_last")]
    assert convertible > 0 and len(now_channel_last) == convertible
    assert result.counts["converted"] == convertible
    assert [tuple(o.shape) for o in converted] == [tuple(o.shape) for o in model.outputs]


def test_new_inputs_start_with_the_data_of_the_originals(net_of):
    """As NNabla's modifiers do: converting after ``x.d = batch`` gives a graph that runs as is;
    an input that never held data gets none (nothing is allocated for it)."""
    net = net_of(lambda x: F.relu(PF.convolution(x, 4, (3, 3), name="c")), (2, 3, 6, 6))
    m = GC.ChannelLastModifier(net.inputs)
    y = GC.GraphConverter([m], params=net.params).convert(net.outputs)
    np.testing.assert_array_equal(m.inputs_cl[0].d, np.moveaxis(net.data[0], 1, -1))
    runnable = cpu_runnable(y)
    nn.forward_all(runnable)
    np.testing.assert_allclose(runnable[0].d, net.forward()[0], rtol=1e-4, atol=1e-5)
    back = GC.ChannelFirstModifier(m.inputs_cl)
    GC.GraphConverter([back]).convert(y)
    np.testing.assert_array_equal(back.inputs_cf[0].d, net.data[0])
    fresh = nn.Variable((1, 3, 4, 4))
    m2 = GC.ChannelLastModifier([fresh])
    GC.GraphConverter([m2]).convert(F.max_pooling(fresh, (2, 2)))
    assert fresh.data.modification_count == 0 and m2.inputs_cl[0].data.modification_count == 0
