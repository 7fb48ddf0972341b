"""BN passes on small graphs: before/expected histograms, recorded reasons, and numbers.

Every graph gets random weights and random BN statistics (``randomize_parameters``), every
conversion is compared with the original on random input, and every test checks that the
original graph's parameters are unchanged (the conftest checks the global scope).
"""
from collections import Counter, OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.bn_fold import FoldBatchNorm, LinearizeBatchNorm


def histogram(outputs):
    return dict(GC.GraphView(outputs, {}).histogram())


def reasons(result, action="kept"):
    return [e.reason for e in result.events if e.action == action]


def conv_bn(h, maps, name, kernel=(3, 3), pad=None, bn=None, **conv):
    pad = tuple(k // 2 for k in kernel) if pad is None else pad
    h = PF.convolution(h, maps, kernel, pad=pad, name=name, **conv)
    return PF.batch_normalization(h, batch_stat=False, name=name + "-bn", **(bn or {}))


# --- folding into the preceding layer -------------------------------------------------

LAYERS = {
    "conv1d": ((2, 3, 11), lambda x: conv_bn(x, 4, "c", kernel=(3,))),
    "conv2d_no_bias": ((2, 3, 8, 8), lambda x: conv_bn(x, 4, "c", with_bias=False)),
    "conv3d": ((1, 2, 5, 5, 5), lambda x: conv_bn(x, 3, "c", kernel=(3, 3, 3))),
    "conv_groups": ((2, 4, 8, 8), lambda x: conv_bn(x, 6, "c", group=2)),
    "bn_no_scale": ((2, 3, 8, 8), lambda x: conv_bn(x, 4, "c", bn=dict(no_scale=True))),
    "bn_no_bias": ((2, 3, 8, 8), lambda x: conv_bn(x, 4, "c", bn=dict(no_bias=True))),
    "bn_no_scale_no_bias": ((2, 3, 8, 8), lambda x: conv_bn(
        x, 4, "c", with_bias=False, bn=dict(no_scale=True, no_bias=True))),
    "deconv_bias": ((2, 4, 5, 5), lambda x: PF.batch_normalization(
        PF.deconvolution(x, 3, (3, 3), stride=(2, 2), name="d"), batch_stat=False)),
    "deconv_no_bias_groups": ((2, 4, 5, 5), lambda x: PF.batch_normalization(
        PF.deconvolution(x, 6, (3, 3), group=2, with_bias=False, name="d"), batch_stat=False)),
    "depthwise": ((2, 3, 8, 8), lambda x: PF.batch_normalization(
        PF.depthwise_convolution(x, (3, 3), multiplier=2, name="dw"), batch_stat=False)),
    "depthwise_deconv": ((2, 6, 5, 5), lambda x: PF.batch_normalization(
        PF.depthwise_deconvolution(x, (3, 3), divisor=3, name="dd"), batch_stat=False)),
    "affine_in_ne_out": ((4, 3, 2, 2), lambda x: PF.batch_normalization(
        PF.affine(x, 7, with_bias=False, name="fc"), batch_stat=False)),
    "affine_in_eq_out": ((4, 6), lambda x: PF.batch_normalization(
        PF.affine(x, 6, name="fc"), batch_stat=False)),
    "affine_base2_out2d": ((2, 3, 5), lambda x: PF.batch_normalization(
        PF.affine(x, (4, 3), base_axis=2, name="fc"), axes=[2], batch_stat=False)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_fold_into_preceding_layer(net_of, name):
    shape, build = LAYERS[name]
    net = net_of(build, shape)
    before = histogram(net.outputs)
    result = net.convert(FoldBatchNorm())
    after = histogram(result.outputs)
    assert before.pop("BatchNormalization") == 1 and after == before
    assert result.counts == Counter(folded=1)
    assert len(result.new_parameters) == 2  # a folded weight and a (new or folded) bias
    net.assert_same(result)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_linearize_is_one_fast_op(net_of, name):
    shape, build = LAYERS[name]
    net = net_of(build, shape)
    result = net.convert(LinearizeBatchNorm())
    hist = histogram(result.outputs)
    assert "BatchNormalization" not in hist and "Mul2" not in hist and "Add2" not in hist
    assert hist.get("DepthwiseConvolution", 0) >= 1 and result.counts == Counter(linearized=1)
    net.assert_same(result)


def test_conv_output_that_forks_keeps_its_bn(net_of):
    def build(x, z):
        a = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="a")
        side = F.add2(a, z)  # the other branch reads a before the BN is built
        ya = PF.batch_normalization(a, batch_stat=False, name="a-bn")
        b = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="b")
        yb = PF.batch_normalization(b, batch_stat=False, name="b-bn")
        side2 = F.mul2(b, z)  # ... and after it
        c = PF.convolution(x, 4, (1, 1), name="c")  # c is itself a graph output
        yc = PF.batch_normalization(c, batch_stat=False, name="c-bn")
        return [side, ya, yb, side2, c, yc]

    net = net_of(build, (2, 3, 6, 6), (2, 4, 6, 6))
    result = net.convert(FoldBatchNorm())
    kept = reasons(result)
    assert len(kept) == 3 and all("is also read by" in r for r in kept)
    assert any("graph output" in r for r in kept)
    assert histogram(result.outputs)["BatchNormalization"] == 3
    net.assert_same(result)
    linear = net.convert(FoldBatchNorm(), LinearizeBatchNorm())  # the usual remedy
    assert "BatchNormalization" not in histogram(linear.outputs)
    net.assert_same(linear)


def test_shared_weight_gets_one_folded_copy_per_bn(net_of):
    def build(x):
        w = nn.parameter.get_parameter_or_create("shared/W", (4, 3, 3, 3))
        y1 = PF.batch_normalization(F.convolution(x, w, pad=(1, 1)), batch_stat=False, name="bn1")
        y2 = PF.batch_normalization(F.convolution(x, w, stride=(2, 2)), batch_stat=False,
                                    name="bn2")
        return [y1, y2]

    net = net_of(build, (2, 3, 8, 8))
    result = net.convert(FoldBatchNorm())
    assert result.counts == Counter(folded=2)
    w1, w2 = [f.inputs[1] for f in GC.GraphView(result.outputs, {}).functions]
    assert w1 is not w2 and not np.allclose(w1.d, w2.d)
    assert sorted(result.new_parameters) == ["shared/W/bn_folded", "shared/W/bn_folded_",
                                             "shared/W/bn_folded_bias", "shared/W/bn_folded_bias_"]
    net.assert_same(result)


def test_batch_stat_bn_is_never_folded(net_of):
    net = net_of(lambda x: PF.batch_normalization(PF.convolution(x, 4, (3, 3), name="c"),
                                               batch_stat=True), (4, 3, 6, 6))
    for p in (FoldBatchNorm(), FoldBatchNorm(opposite=True), LinearizeBatchNorm()):
        with pytest.warns(GC.ConversionWarning, match=r"BatchNormalization 'bn' \(batch_stat=True"):
            result = net.convert(p)  # checks the running statistics were not touched
        assert result.counts == Counter(kept=1) and "batch_stat=True" in reasons(result)[0]
        bn = [f for f in GC.GraphView(result.outputs, {}).functions
              if f.info.type_name == "BatchNormalization"]
        assert bn[0].info.args["batch_stat"] is True
    mean = net.params["bn/mean"]
    mean.d = net.snapshot["bn/mean"]  # forwarding a training BN updates its running mean
    net.assert_same(result)


def test_bn_on_graph_input_and_after_unfoldable_layers(net_of):
    net = net_of(lambda x: F.relu(PF.batch_normalization(
        F.max_pooling(PF.batch_normalization(x, batch_stat=False, name="bn0"), (2, 2)),
        batch_stat=False, name="bn1")), (2, 3, 8, 8))
    result = net.convert(FoldBatchNorm())
    assert any("graph input" in r for r in reasons(result))
    assert any("MaxPooling" in r for r in reasons(result))
    net.assert_same(result)
    linear = net.convert(LinearizeBatchNorm())
    assert linear.counts == Counter(linearized=2)
    net.assert_same(linear)


def test_channel_last_fold_matches_channel_first(net_of):
    """CPU refuses channel-last conv, so compare folded weights with the channel-first fold."""
    def build(channel_last):
        def net(x):
            h = PF.convolution(x, 6, (3, 3), group=2, channel_last=channel_last, name="c")
            return PF.batch_normalization(h, axes=[3 if channel_last else 1], batch_stat=False)
        return net

    cf = net_of(build(False), (2, 4, 8, 8))
    cl = net_of(build(True), (2, 8, 8, 4))
    for k in cf.params:  # the same numbers in each layout
        v = cf.params[k].d
        cl.params[k].d = np.moveaxis(v, 1, -1) if k.endswith("/W") else v.reshape(
            cl.params[k].shape)
    cl.resnapshot()
    r_cf, r_cl = cf.convert(FoldBatchNorm()), cl.convert(FoldBatchNorm(channel_last=True))
    assert r_cl.counts == Counter(folded=1)
    (conv_cf,), (conv_cl,) = GC.GraphView(r_cf.outputs, {}).functions, \
        GC.GraphView(r_cl.outputs, {}).functions
    assert conv_cl.info.args["channel_last"] is True
    np.testing.assert_allclose(np.moveaxis(conv_cl.inputs[1].d, -1, 1), conv_cf.inputs[1].d)
    np.testing.assert_allclose(conv_cl.inputs[2].d, conv_cf.inputs[2].d)


def test_bn_axis_is_read_from_the_bn_not_assumed(net_of):
    net = net_of(lambda x: PF.batch_normalization(PF.convolution(x, 4, (1, 1), name="c"),
                                               axes=[3], batch_stat=False), (2, 3, 4, 4))
    result = net.convert(FoldBatchNorm())
    assert result.counts == Counter(kept=1) and "not the channel axis" in reasons(result)[0]
    linear = net.convert(LinearizeBatchNorm())  # channel-last BN axis, linearized exactly
    net.assert_same(linear)


# --- folding into the following layer -------------------------------------------------

def _bn_then(layer, bn=None):
    def build(x):
        return layer(PF.batch_normalization(x, batch_stat=False, name="bn", **(bn or {})))
    return build


OPPOSITE = {
    "conv_no_pad": (_bn_then(lambda h: PF.convolution(h, 5, (3, 3), stride=(2, 2), name="c")),
                    "folded"),
    "conv_groups_no_bias": (_bn_then(lambda h: PF.convolution(
        h, 6, (3, 3), group=2, with_bias=False, name="c")), "folded"),
    "depthwise": (_bn_then(lambda h: PF.depthwise_convolution(h, (3, 3), multiplier=2)),
                  "folded"),
    "affine": (_bn_then(lambda h: PF.affine(h, 7, name="fc")), "folded"),
    "conv_pad": (_bn_then(lambda h: PF.convolution(h, 5, (3, 3), pad=(1, 1), name="c")), "kept"),
    "forked": (_bn_then(lambda h: F.add2(PF.convolution(h, 4, (1, 1), name="c"), h)), "kept"),
    "relu_between": (_bn_then(lambda h: PF.convolution(F.relu(h), 4, (1, 1), name="c")), "kept"),
}


@pytest.mark.parametrize("name", sorted(OPPOSITE))
def test_fold_into_following_layer_only_where_exact(net_of, name):
    build, action = OPPOSITE[name]
    net = net_of(build, (2, 4, 7, 7))
    result = net.convert(FoldBatchNorm(opposite=True))
    assert result.counts == Counter({action: 1})
    assert ("BatchNormalization" in histogram(result.outputs)) == (action == "kept")
    net.assert_same(result)


def test_padding_is_fine_when_the_bn_has_no_shift(net_of):
    net = net_of(_bn_then(lambda h: PF.convolution(h, 5, (3, 3), pad=(1, 1), name="c"),
                       bn=dict(no_bias=True)), (2, 4, 7, 7))
    net.params["bn/bn/mean"].d = 0.0  # c1 = -mean * c0 = 0: padding meets no shift
    net.resnapshot()
    result = net.convert(FoldBatchNorm(opposite=True))
    assert result.counts == Counter(folded=1)
    net.assert_same(result)


# --- conversions over time and scopes -------------------------------------------------

def _small_cnn(x):
    h = F.relu(conv_bn(x, 4, "c1"))
    return PF.affine(F.relu(conv_bn(h, 4, "c2", with_bias=False)), 3, name="fc")


def test_converting_twice_and_again_after_the_weights_changed(net_of):
    net = net_of(_small_cnn, (2, 3, 8, 8))
    first = net.convert(FoldBatchNorm())
    again = GC.run_passes([FoldBatchNorm()], first.outputs, params=first.new_parameters)
    assert again.counts == Counter() and histogram(again.outputs) == histogram(first.outputs)
    net.assert_same(again)
    folded = {k: v.d.copy() for k, v in first.new_parameters.items()}
    rng = np.random.RandomState(5)
    for k, v in net.params.items():  # new weights and new BN statistics, same names
        v.d = v.d * rng.uniform(0.5, 1.5, v.shape) + (0.1 if k.endswith("mean") else 0.0)
    net.resnapshot()
    second = net.convert(FoldBatchNorm())
    net.assert_same(second)  # no stale folded values picked up by name
    for k, v in first.new_parameters.items():  # the first result kept its own values
        np.testing.assert_array_equal(v.d, folded[k], err_msg=k)
        assert not np.allclose(second.new_parameters[k].d, folded[k])


def test_two_networks_with_the_same_names_in_one_process(net_of):
    a, b = net_of(_small_cnn, (2, 3, 8, 8), seed=1), net_of(_small_cnn, (1, 3, 12, 12), seed=2)
    assert list(a.params) == list(b.params)
    ra = a.convert(FoldBatchNorm())
    yb = GC.GraphConverter([GC.BatchNormalizationFoldingModifier()]).convert(b.outputs[0])
    a.assert_same(ra)
    np.testing.assert_allclose(b.forward([yb])[0], b.forward()[0], rtol=1e-4, atol=1e-4)
    a.assert_same(a.convert(FoldBatchNorm()))  # a again, after b: nothing stale from b


def test_converting_inside_a_parameter_scope_and_registering(net_of):
    net = net_of(_small_cnn, (2, 3, 8, 8))
    with nn.parameter_scope("outer"):
        y = GC.GraphConverter([GC.BatchNormalizationFoldingModifier()]).convert(net.outputs[0])
    net.assert_unchanged()
    np.testing.assert_allclose(net.forward([y])[0], net.forward()[0], rtol=1e-4, atol=1e-4)
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        result = net.convert(FoldBatchNorm())
        result.register("folded")
        with pytest.raises(ValueError, match="already exist"):
            result.register("folded")
        with nn.parameter_scope("folded"):
            registered = nn.get_parameters(grad_only=False)
    assert sorted(registered) == sorted(result.new_parameters)
