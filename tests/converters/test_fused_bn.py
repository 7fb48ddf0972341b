"""Fusing BN -> Add2 -> ReLU into FusedBatchNormalization and back, with random statistics:
NNabla's fuser gives the fused function fresh parameters, so only identity BNs pass there."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC


def bn(h, name, **kw):
    return PF.batch_normalization(h, batch_stat=kw.pop("batch_stat", False), name=name, **kw)


def block(x, order="bn_first", **kw):
    h = bn(PF.convolution(x, 3, (3, 3), pad=(1, 1), name="conv"), "bn", **kw)
    return F.relu(h + x if order == "bn_first" else x + h)


def downsample(x):
    main = bn(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="main"), "bn_main")
    short = bn(PF.convolution(x, 4, (1, 1), name="short"), "bn_short")
    return F.relu(main + short)


def fuse(net, modifier=None):
    gc = GC.GraphConverter([modifier or GC.FusedBatchNormalizationModifier()], params=net.params)
    return gc.convert(net.outputs), gc.last_result


@pytest.mark.parametrize("order", ["bn_first", "bn_second"])
def test_bn_add_relu_becomes_one_fused_bn_with_the_bns_own_parameters(net_of, hist, order):
    net = net_of(lambda x: block(x, order), (2, 3, 5, 5))
    y, result = fuse(net)
    assert hist(net.outputs) == {"Convolution": 1, "BatchNormalization": 1, "Add2": 1, "ReLU": 1}
    assert hist(y) == {"Convolution": 1, "FusedBatchNormalization": 1}
    assert result.counts == {"fused": 1} and result.new_parameters == {}
    fused = [f for f in GC.GraphView(y, {}).functions if f.info.type_name == "FusedBatchNormalization"][0]
    assert fused.inputs[1] == net.params["bn/bn/beta"] and fused.inputs[4] == net.params["bn/bn/var"]
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    net.assert_unchanged()


@pytest.mark.parametrize("kw", [{"no_scale": True}, {"no_bias": True}, {"batch_stat": True}],
                         ids=["no_scale", "no_bias", "batch_stat"])
def test_bns_without_scale_or_bias_and_in_training_mode_fuse_exactly(net_of, hist, kw):
    net = net_of(lambda x: block(x, **kw), (4, 3, 5, 5))
    y, result = fuse(net)
    assert hist(y) == {"Convolution": 1, "FusedBatchNormalization": 1}
    assert len(result.new_parameters) == (0 if "batch_stat" in kw else 1)  # a constant 1 or 0
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-4, atol=1e-5)


def test_a_downsampling_block_fuses_one_bn_and_feeds_it_the_other(net_of, hist):
    net = net_of(downsample, (2, 3, 5, 5))
    y, result = fuse(net)
    assert hist(y) == {"Convolution": 2, "BatchNormalization": 1, "FusedBatchNormalization": 1}
    assert [e.reason for e in result.reasons("kept")] == [
        "the other operand's BatchNormalization is fused with this Add2"]
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    net.assert_unchanged()


@pytest.mark.parametrize("build, reason", [
    (lambda x: bn(PF.convolution(x, 3, (3, 3), pad=(1, 1), name="c"), "b") + x,
     None),  # BN -> Add2 without ReLU: no pattern, nothing noted
    (lambda x: (lambda h: F.relu(h + x) + h)(bn(PF.convolution(x, 3, (3, 3), pad=(1, 1), name="c"), "b")),
     "its output is also read by others than the Add2: they need it unfused"),
    (lambda x: (lambda s: F.relu(s) * s)(bn(PF.convolution(x, 3, (3, 3), pad=(1, 1), name="c"), "b") + x),
     "the Add2's output is also read by others than the ReLU"),
    (lambda x: F.relu(bn(PF.convolution(x, 3, (3, 3), pad=(1, 1), name="c"), "b") + x[:, :, :1, :1]),
     "the Add2 broadcasts (2, 3, 1, 1) to (2, 3, 5, 5); FusedBatchNormalization does not"),
], ids=["no_relu", "bn_forks", "add_forks", "broadcast"])
def test_what_cannot_fuse_exactly_stays_with_its_reason(net_of, hist, build, reason):
    net = net_of(build, (2, 3, 5, 5))
    y, result = fuse(net)
    assert hist(y) == hist(net.outputs)
    assert [e.reason for e in result.reasons("kept")] == ([] if reason is None else [reason])
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    net.assert_unchanged()


def random_fused(x, with_z=True):
    rng = np.random.RandomState(3)
    beta, gamma, mean = (nn.Variable.from_numpy_array(rng.normal(0, 0.5, (1, 3, 1, 1)).astype(np.float32))
                         for _ in range(3))
    var = nn.Variable.from_numpy_array(rng.uniform(0.5, 2, (1, 3, 1, 1)).astype(np.float32))
    h = PF.convolution(x, 3, (3, 3), pad=(1, 1), name="c")
    return F.fused_batch_normalization(h, beta, gamma, mean, var, x if with_z else None, batch_stat=False)


@pytest.mark.parametrize("with_z", [True, False], ids=["add", "no_add"])
def test_unfusing_gives_bn_add_relu_on_the_same_parameters_and_round_trips(net_of, hist, with_z):
    net = net_of(lambda x: random_fused(x, with_z), (2, 3, 5, 5))
    y, result = fuse(net, GC.UnfusedBatchNormalizationModifier())
    expected = {"Convolution": 1, "BatchNormalization": 1, "ReLU": 1}
    assert hist(y) == (dict(expected, Add2=1) if with_z else expected)
    assert result.counts == {"unfused": 1} and result.new_parameters == {}
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    if with_z:
        back = GC.GraphConverter([GC.FusedBatchNormalizationModifier()]).convert(y)
        assert hist(back) == hist(net.outputs)
        np.testing.assert_allclose(net.forward(back)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    net.assert_unchanged()


def test_a_fused_bn_with_statistics_outputs_stays(net_of, hist):
    def build(x):
        params = [nn.Variable.from_numpy_array(np.full((1, 3, 1, 1), v, np.float32)) for v in (0, 1, 0, 1)]
        return F.fused_batch_normalization(x, *params, z=x, batch_stat=True, output_stat=True)[0]
    net = net_of(build, (2, 3, 4, 4))
    y, result = fuse(net, GC.UnfusedBatchNormalizationModifier())
    assert hist(y) == {"FusedBatchNormalization": 1}
    assert [e.reason for e in result.reasons("kept")] == [
        "nonlinearity 'relu' with 3 outputs: only ReLU with one output is unfused"]


@pytest.mark.parametrize("build", [block, downsample], ids=["block", "downsampling_block"])
def test_nnablas_fuser_gives_fresh_parameters_and_drops_a_shortcut_bn_where_ours_is_exact(
        net_of, hist, nnabla_peer, build):
    net = net_of(build, (2, 3, 5, 5))
    theirs = nnabla_peer(net, lambda NGC: [NGC.FusedBatchNormalizationModifier()])[0]
    assert np.abs(theirs - net.forward()[0]).max() > 0.1
    np.testing.assert_allclose(net.forward(fuse(net)[0])[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    net.assert_unchanged()


def test_nnablas_unfuser_gives_fresh_parameters_where_ours_is_exact(net_of, nnabla_peer):
    net = net_of(random_fused, (2, 3, 5, 5))
    theirs = nnabla_peer(net, lambda NGC: [NGC.UnfusedBatchNormalizationModifier()])[0]
    assert np.abs(theirs - net.forward()[0]).max() > 0.1
    y, _ = fuse(net, GC.UnfusedBatchNormalizationModifier())
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
