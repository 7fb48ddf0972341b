"""Seed 003's Converter API: converters built from passes, and user converters (anything with
``convert(outputs, inputs)``) chained with ours in SequentialConverter."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.bn_fold import FoldBatchNorm
from converters.rewrite import GraphPass


class ReluToSigmoid(GraphPass):
    name = "relu_to_sigmoid"

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name == "ReLU":
            b.note(f, "replaced", "by a Sigmoid")
            return b.call("Sigmoid", inputs, {})


class DoubleOutputs:
    """A seed-003 style user converter: not ours, only ``convert(vroot, vinputs)``."""

    def __init__(self):
        self.calls = []

    def convert(self, vroot, vinputs):
        self.calls.append(list(vinputs))
        return [F.mul_scalar(v, 2.0) for v in vroot] if isinstance(vroot, list) else F.mul_scalar(vroot, 2.0)


def conv_bn_relu(x):
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv")
    return F.relu(PF.batch_normalization(h, batch_stat=False, name="bn"))


def test_a_converter_is_built_from_passes(net_of, hist):
    net = net_of(conv_bn_relu, (2, 3, 6, 6))
    c = GC.Converter(name="mine", params=net.params, passes=[FoldBatchNorm(), ReluToSigmoid()])
    y = c.convert(net.outputs[0], [net.inputs[0]])
    assert hist([y]) == {"Convolution": 1, "Sigmoid": 1}
    assert c.last_result.counts == {"folded": 1, "replaced": 1}
    h = net.forward([net.outputs[0].parent.inputs[0]])[0]  # the BN output
    np.testing.assert_allclose(net.forward([y])[0], 1 / (1 + np.exp(-h)), rtol=1e-4, atol=1e-5)
    net.assert_unchanged()


def test_bad_passes_are_refused_at_construction_naming_them():
    with pytest.raises(TypeError, match=r"mine: passes\[1\] is a str, not a converters.GraphPass"):
        GC.Converter(name="mine", passes=[FoldBatchNorm(), "relu"])


def test_existing_subclasses_and_the_private_attribute_still_work(net_of, hist):
    net = net_of(conv_bn_relu, (2, 3, 6, 6))
    old_style = GC.Converter(params=net.params)
    old_style._passes = [ReluToSigmoid()]
    assert hist([old_style.convert(net.outputs[0])]) == {"Convolution": 1, "BatchNormalization": 1, "Sigmoid": 1}
    assert GC.BatchNormalizationFoldedConverter(params=net.params).passes()[0].name == "bn_fold"


def test_a_user_converter_chains_with_ours(net_of, hist):
    net = net_of(conv_bn_relu, (2, 3, 6, 6))
    user = DoubleOutputs()
    seq = GC.SequentialConverter([GC.BatchNormalizationFoldedConverter(), user,
                                  GC.Converter(passes=[ReluToSigmoid()])], params=net.params)
    y = seq.convert(net.outputs[0], [net.inputs[0]])
    assert isinstance(y, nn.Variable)
    assert hist([y]) == {"Convolution": 1, "MulScalar": 1, "Sigmoid": 1}
    assert len(user.calls) == 1 and user.calls[0][0] is net.inputs[0]
    h = net.forward([net.outputs[0].parent.inputs[0]])[0]
    np.testing.assert_allclose(net.forward([y])[0], 2 / (1 + np.exp(-h)), rtol=1e-4, atol=1e-5)
    actions = [e.action for e in seq.last_result.events]
    assert actions == ["folded", "converted", "replaced"]
    assert len(seq.last_result.new_parameters) == 2  # the folded weight and bias
    net.assert_unchanged()


def test_a_user_converter_gets_the_inputs_a_layout_step_created(net_of):
    net = net_of(lambda x: F.relu(PF.convolution(x, 4, (3, 3), name="conv")), (2, 3, 6, 6))

    class ToChannelLast(GC.Converter):
        def __init__(self, inputs, **kw):
            super().__init__(**kw)
            self._passes = [GC.ChannelLastModifier(inputs).passes()[0]]

    user = DoubleOutputs()
    seq = GC.SequentialConverter([ToChannelLast(net.inputs), user], params=net.params)
    seq.convert(net.outputs, net.inputs)
    x_cl = seq.last_result.input_map[net.inputs[0]]
    assert x_cl.shape == (2, 6, 6, 3) and user.calls == [[x_cl]]


def test_without_inputs_a_user_converter_gets_the_graph_inputs(net_of):
    net = net_of(conv_bn_relu, (2, 3, 6, 6))
    user = DoubleOutputs()
    GC.SequentialConverter([user, GC.IdentityConverter()], params=net.params).convert(net.outputs)
    assert user.calls == [[net.inputs[0]]]


def test_our_converters_accept_the_seed_call_and_non_converters_are_refused(net_of):
    net = net_of(conv_bn_relu, (2, 3, 6, 6))
    for c in (GC.IdentityConverter(params=net.params), GC.SequentialConverter([DoubleOutputs()])):
        assert isinstance(c.convert(net.outputs[0], [net.inputs[0]]), nn.Variable)
    with pytest.raises(TypeError, match="takes Converter objects; got 'bn' "):
        GC.SequentialConverter([GC.IdentityConverter(), "bn"])
    with pytest.raises(TypeError, match="has no passes"):
        GC.SequentialConverter([DoubleOutputs()]).passes()
