"""Graph edits through NNabla's modifier names: before/expected histograms, numbers against
graphs built by hand, recorded reasons for what stays, and the original untouched."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from gcverify.testing import python_identity


def conv_bn_block(x, batch_stat=False, with_bias=True, **bn):
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), with_bias=with_bias, name="conv")
    h = PF.batch_normalization(h, batch_stat=batch_stat, name="bn", **bn)
    return PF.affine(F.relu(h) * 0.5, 3, name="fc")


def upstream(v, steps):
    """The variable ``steps`` functions before ``v`` along input 0."""
    for _ in range(steps):
        v = v.parent.inputs[0]
    return v


def convert(net, *modifiers):
    gc = GC.GraphConverter(list(modifiers), params=net.params)
    return gc.convert(net.outputs), gc.last_result


# --- IdentityModifier --------------------------------------------------------------------
def test_identity_is_an_equal_copy_sharing_the_parameters(net_of, hist):
    net = net_of(conv_bn_block, (2, 3, 6, 6))
    y, result = convert(net, GC.IdentityModifier())
    assert hist(y) == hist(net.outputs) and not y[0] == net.outputs[0]
    assert GC.GraphView(y, net.params).parameters.keys() == GC.GraphView(net.outputs, net.params).parameters.keys()
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])
    assert result.new_parameters == {}
    net.assert_unchanged()


def test_identity_reads_a_replacement_of_another_batch_size_and_can_be_reused(net_of, hist):
    net = net_of(conv_bn_block, (2, 3, 6, 6))
    bigger = nn.Variable.from_numpy_array(np.concatenate([net.data[0]] * 3))
    m = GC.IdentityModifier({net.inputs[0]: bigger})
    for _ in range(2):  # NNabla's modifier forgets its mapping after one conversion
        y, result = convert(net, m)
        assert y[0].shape == (6, 3) and hist(y) == hist(net.outputs)
        assert result.input_map == {net.inputs[0]: bigger}
        nn.forward_all(y)
        np.testing.assert_allclose(y[0].d[2:4], net.forward()[0], rtol=1e-5, atol=1e-6)
    net.assert_unchanged()


def test_identity_copy_value_fills_the_replacement(net_of):
    net = net_of(conv_bn_block, (2, 3, 6, 6))
    net.inputs[0].g = 0.25
    other = nn.Variable((2, 3, 6, 6))
    y, _ = convert(net, GC.IdentityModifier({net.inputs[0]: other}, copy_value=True))
    np.testing.assert_array_equal(other.d, net.data[0])
    assert np.all(other.g == 0.25)
    nn.forward_all(y)
    np.testing.assert_array_equal(y[0].d, net.forward()[0])


def test_identity_refuses_bad_mappings_naming_them(net_of):
    net = net_of(conv_bn_block, (2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"entry 0 replaces shape \(2, 3, 6, 6\) by \(1, 3, 6, 6\); copy_value"):
        GC.IdentityModifier({net.inputs[0]: nn.Variable((1, 3, 6, 6))}, copy_value=True)
    with pytest.raises(TypeError, match="entry 0 maps a Variable to a str"):
        GC.IdentityModifier({net.inputs[0]: "x"})
    with pytest.raises(TypeError, match="inputs must be a dict"):
        GC.IdentityModifier([net.inputs[0]])
    with pytest.raises(ValueError, match=r"inputs entry 0 \(shape \(5,\)\) is not a leaf the graph reads"):
        convert(net, GC.IdentityModifier({nn.Variable((5,)): nn.Variable((5,))}))
    net.assert_unchanged()


# --- RemoveFunctionModifier --------------------------------------------------------------
def test_remove_function_drops_the_listed_types(net_of, hist):
    net = net_of(conv_bn_block, (2, 3, 6, 6))
    y, result = convert(net, GC.RemoveFunctionModifier(["BatchNormalization", "MulScalar"]))
    assert hist(net.outputs) == {"Convolution": 1, "BatchNormalization": 1, "ReLU": 1, "MulScalar": 1, "Affine": 1}
    assert hist(y) == {"Convolution": 1, "ReLU": 1, "Affine": 1}
    assert result.counts == {"removed": 2}
    conv_out = net.forward([upstream(net.outputs[0], 4)])[0]
    w, b = net.params["fc/affine/W"].d, net.params["fc/affine/b"].d
    np.testing.assert_allclose(net.forward(y)[0], np.maximum(conv_out, 0).reshape(2, -1) @ w + b,
                               rtol=1e-5, atol=1e-5)
    net.assert_unchanged()


def test_remove_function_keeps_what_would_change_a_shape_and_takes_python_functions(net_of, hist):
    net = net_of(lambda x: F.relu(F.max_pooling(x, (2, 2))), (1, 2, 4, 4))
    y, result = convert(net, GC.RemoveFunctionModifier("MaxPooling"))  # one name as a string
    assert hist(y) == hist(net.outputs)
    assert [e.reason for e in result.reasons("kept")] == ["its readers would see shape (1, 2, 4, 4) instead of (1, 2, 2, 2)"]
    x = nn.Variable.from_numpy_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    tapped = F.relu(python_identity(x, name="PythonTap"))
    untapped = GC.GraphConverter([GC.RemoveFunctionModifier(["PythonTap"])]).convert(tapped)
    assert hist([untapped]) == {"ReLU": 1}
    with pytest.raises(TypeError, match="rm_funcs must hold function type names, got 3"):
        GC.RemoveFunctionModifier([3])
    net.assert_unchanged()


def test_removing_the_last_function_makes_its_input_the_output(net_of):
    net = net_of(lambda x: F.relu(x), (2, 3))
    y = GC.GraphConverter([GC.RemoveFunctionModifier(["ReLU"])]).convert(net.outputs[0])
    assert y == net.inputs[0]


# --- NoGradModifier ----------------------------------------------------------------------
def test_no_grad_reads_every_parameter_without_gradient(net_of, hist):
    net = net_of(conv_bn_block, (2, 3, 6, 6))
    net.inputs[0].need_grad = True
    net.resnapshot()
    y, result = convert(net, GC.NoGradModifier())
    view = GC.GraphView(y, result.new_parameters)
    assert len(view.parameters) == 8 and all(not v.need_grad for v in view.parameters)
    assert hist(y) == hist(net.outputs)
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])
    for v in net.params.values():
        v.grad.zero()
    y[0].backward(clear_buffer=True)
    assert all(np.all(v.g == 0) for v in net.params.values())  # nothing reached the parameters
    assert np.any(net.inputs[0].g != 0)  # the input still gets its gradient
    assert net.params["conv/conv/W"].need_grad  # the originals are as they were
    net.assert_unchanged()


# --- BatchNormBatchStatModifier / TestModeModifier ---------------------------------------
@pytest.mark.parametrize("bn", [{}, {"no_scale": True}, {"no_bias": True}], ids=["bn", "no_scale", "no_bias"])
def test_batch_stat_bns_switch_to_running_statistics(net_of, hist, bn):
    """NNabla drops no_scale/no_bias and shifts the remaining inputs: ours keeps them."""
    train = net_of(lambda x: conv_bn_block(x, batch_stat=True, **bn), (2, 3, 6, 6))
    y, result = convert(train, GC.BatchNormBatchStatModifier())
    args = [f.info.args for f in GC.GraphView(y, {}).functions if f.info.type_name == "BatchNormalization"]
    assert [a["batch_stat"] for a in args] == [False] and result.counts == {"test_mode": 1}
    reference = net_of(lambda x: conv_bn_block(x, batch_stat=False, **bn), (2, 3, 6, 6))
    for name, v in reference.params.items():  # the same random values (same seed, same names)
        np.testing.assert_array_equal(v.d, train.params[name].d)
    np.testing.assert_allclose(train.forward(y)[0], reference.forward()[0], rtol=1e-5, atol=1e-6)
    assert hist(y) == hist(train.outputs)
    train.assert_unchanged()


def test_fused_bn_switches_too_and_an_output_stat_bn_stays(net_of):
    def build(x):
        fused = PF.fused_batch_normalization(x, x, batch_stat=True, name="fbn")
        stats = F.batch_normalization(x, *[nn.Variable.from_numpy_array(np.full((1, 3, 1, 1), v, np.float32))
                                           for v in (0, 1, 0, 1)], batch_stat=True, output_stat=True)
        return fused, stats[0]
    net = net_of(build, (2, 3, 4, 4))
    y, result = convert(net, GC.TestModeModifier())
    kinds = {f.info.type_name: f.info.args["batch_stat"] for f in GC.GraphView(y, {}).functions}
    assert kinds == {"FusedBatchNormalization": False, "BatchNormalization": True}
    assert [e.reason for e in result.reasons("kept")] == [
        "its batch mean and variance outputs (output_stat=True) exist only with batch statistics"]
    net.assert_unchanged()


def test_test_mode_also_removes_the_listed_functions(net_of, hist):
    net = net_of(lambda x: conv_bn_block(x, batch_stat=True), (2, 3, 6, 6))
    y, result = convert(net, GC.TestModeModifier(["MulScalar"]))
    assert hist(y) == {"Convolution": 1, "BatchNormalization": 1, "ReLU": 1, "Affine": 1}
    assert result.counts == {"test_mode": 1, "removed": 1}


# --- PruningModifier ---------------------------------------------------------------------
def pruning_net(x):
    h = PF.convolution(x, 6, (3, 3), pad=(1, 1), name="conv")
    h = PF.deconvolution(h, 4, (3, 3), group=2, name="deconv")
    h = PF.depthwise_deconvolution(h, (3, 3), divisor=2, name="dd")
    return PF.affine(h, 5, name="fc")


def test_pruning_zeroes_weak_channels_of_every_layer_kind(net_of, hist):
    net = net_of(pruning_net, (1, 4, 5, 5))
    weak = {"conv/conv/W": (slice(0, 2),), "deconv/deconv/W": (slice(None), slice(0, 1)),
            "dd/depthwise_deconv/W": (slice(0, 2),), "fc/affine/W": (slice(None), slice(0, 2))}
    for name, where in weak.items():
        net.params[name].d[where] *= 1e-3
    net.resnapshot()
    y, result = convert(net, GC.PruningModifier(0.01))
    assert hist(y) == hist(net.outputs)
    assert sorted(e.reason for e in result.reasons("pruned")) == [
        "1 of 2 output channels zeroed", "2 of 4 output channels zeroed", "2 of 5 output channels zeroed",
        "2 of 6 output channels zeroed"]
    convs = {f.info.type_name: f for f in GC.GraphView(y, {}).functions}
    assert np.all(convs["Convolution"].inputs[1].d[:2] == 0) and np.all(convs["Convolution"].inputs[2].d[:2] == 0)
    assert np.all(convs["Deconvolution"].inputs[1].d[:, 0] == 0)  # channel 0 of both groups
    assert np.all(convs["Deconvolution"].inputs[2].d[[0, 2]] == 0) and np.all(convs["Deconvolution"].inputs[2].d[[1, 3]] != 0)
    assert np.all(convs["Affine"].inputs[1].d[:, :2] == 0) and np.all(convs["Affine"].inputs[1].d[:, 2:] != 0)
    net.assert_unchanged()


def test_pruning_keeps_layers_it_cannot_or_need_not_prune(net_of):
    net = net_of(lambda x: PF.affine(x, 3, name="a") + F.affine(x, F.identity(nn.Variable.from_numpy_array(
        np.ones((4, 3), np.float32)))), (2, 4))
    y, result = convert(net, GC.PruningModifier(0.0, ["Affine"]))
    assert sorted(e.reason for e in result.reasons("kept")) == [
        "its weight or bias is computed by the graph, not a parameter",
        "no output channel has a squared norm <= 0"]
    assert result.new_parameters == {}
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])


@pytest.mark.parametrize("make, message", [
    (lambda: GC.PruningModifier(-1), "pruning_threshold must be a finite number >= 0, got -1"),
    (lambda: GC.PruningModifier(float("nan")), "pruning_threshold must be a finite number"),
    (lambda: GC.PruningModifier(True), "pruning_threshold must be a finite number >= 0, got True"),
    (lambda: GC.PruningModifier(0.1, ["Convolution", "BatchNormalization"]),
     "functions_to_prune: unknown function name 'BatchNormalization'"),
])
def test_pruning_arguments_fail_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- AddBiasModifier ---------------------------------------------------------------------
def test_add_bias_gives_zero_biases_next_to_a_bn_only(net_of):
    def build(x):
        h = PF.convolution(x, 4, (3, 3), with_bias=False, name="c1")  # -> BN: gets a bias
        h = PF.batch_normalization(h, batch_stat=False)
        h = PF.deconvolution(h, 6, (2, 2), group=2, with_bias=False, name="d")  # BN ->: gets one
        return PF.affine(h, 3, with_bias=False, name="fc")  # no BN around: stays
    net = net_of(build, (2, 2, 5, 5))
    y, result = convert(net, GC.AddBiasModifier())
    arity = {f.info.type_name: len(f.inputs) for f in GC.GraphView(y, {}).functions}
    assert arity == {"Convolution": 3, "BatchNormalization": 5, "Deconvolution": 3, "Affine": 2}
    assert sorted(v.shape for v in result.new_parameters.values()) == [(4,), (6,)]
    assert all(np.all(v.d == 0) for v in result.new_parameters.values())
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-6, atol=1e-6)
    net.assert_unchanged()


# --- where NNabla's modifiers fail on the same graphs ------------------------------------
@pytest.mark.parametrize("bn", [{"no_scale": True}, {"no_bias": True}], ids=["no_scale", "no_bias"])
def test_nnablas_batch_stat_modifier_crashes_on_a_bn_without_scale_or_bias(net_of, nnabla_peer, bn):
    net = net_of(lambda x: conv_bn_block(x, batch_stat=True, **bn), (2, 3, 6, 6))
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'variance'"):
        nnabla_peer(net, lambda NGC: [NGC.BatchNormBatchStatModifier()])
    convert(net, GC.BatchNormBatchStatModifier())  # ours: see the test above for its numbers


@pytest.mark.parametrize("layer", [
    lambda x: PF.deconvolution(x, 4, (3, 3), group=2, name="d"),
    lambda x: PF.depthwise_deconvolution(x, (3, 3), divisor=2, name="d")], ids=["deconv_groups", "divisor"])
def test_nnablas_pruner_crashes_on_grouped_deconvolutions(net_of, nnabla_peer, layer):
    net = net_of(lambda x: PF.affine(layer(x), 3, name="fc"), (1, 4, 5, 5))
    kinds = ["Deconvolution", "DepthwiseDeconvolution"]
    with pytest.raises(ValueError, match="operands could not be broadcast together"):
        nnabla_peer(net, lambda NGC: [NGC.PruningModifier(0.5, kinds)])
    y, result = convert(net, GC.PruningModifier(0.5, kinds))
    assert result.counts["pruned"] + result.counts["kept"] == 1


def test_pruning_again_after_training_uses_the_new_weights(net_of):
    """NNabla stores 'w-pruned' by name in the scope and finds the stale one the next time."""
    net = net_of(lambda x: PF.affine(x, 3, name="fc"), (2, 4))
    w, b = net.params["fc/affine/W"], net.params["fc/affine/b"]
    kept = w.d.copy()
    w.d[:, 0] *= 1e-3  # output channel 0 is weak
    pruning = GC.PruningModifier(0.01, ["Affine"])
    convert(net, pruning)
    w.d *= 2  # "trained" between the two conversions
    y, _ = convert(net, pruning)
    mask = np.array([0, 1, 1], np.float32)
    np.testing.assert_allclose(net.forward(y)[0], net.data[0] @ (w.d * mask) + b.d * mask, rtol=1e-5, atol=1e-6)
    w.d = kept


def test_nnablas_identity_and_no_grad_modifiers_miss_what_ours_handle(net_of):
    import nnabla.experimental.graph_converters as NGC
    net = net_of(lambda x: PF.affine(x, 3, name="fc"), (2, 4))
    bigger = nn.Variable((5, 4))
    theirs = NGC.IdentityModifier({net.inputs[0]: bigger})
    NGC.GraphConverter([theirs]).convert(net.outputs[0])
    assert NGC.GraphConverter([theirs]).convert(net.outputs[0]).shape == (2, 3)  # forgot its mapping
    ours = GC.IdentityModifier({net.inputs[0]: bigger})
    assert [GC.GraphConverter([ours]).convert(net.outputs[0]).shape for _ in range(2)] == [(5, 3)] * 2
    # parameters outside the global scope keep their gradients with NNabla's NoGradModifier
    no_grad = NGC.GraphConverter([NGC.NoGradModifier()]).convert(net.outputs[0])
    assert [v.need_grad for v in no_grad.parent.inputs[1:]] == [True, True]
    ours = GC.GraphConverter([GC.NoGradModifier()]).convert(net.outputs[0])
    assert [v.need_grad for v in ours.parent.inputs[1:]] == [False, False]
