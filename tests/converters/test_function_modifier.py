"""NNabla's FunctionModifier contract on our engine: user modifiers written for NNabla run
unchanged, alone or mixed with ours, and the original stays as it was."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.function_modifier import FunctionModifierPass
from gcverify.testing import python_identity


def conv_bn_relu_affine(x):
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="conv")
    h = F.relu(PF.batch_normalization(h, batch_stat=False, name="bn"))
    return PF.affine(h, 5, name="fc")


# NNabla's documentation example of FunctionModifier.modify, as users copy it.
class ReLUToLeakyReLUModifier(GC.FunctionModifier):

    def __init__(self):
        super(ReLUToLeakyReLUModifier, self).__init__()

    def modify(self, f, inputs):
        if f.info.type_name == 'ReLU':
            x = inputs[0]
            return F.leaky_relu(x)


class SwishFusion(GC.FunctionModifier):
    """Replaces the subgraph ``x * sigmoid(x)`` by one Swish, NNabla style: skip the Sigmoid
    (its output stands for its input for now), build the Swish at the Mul2."""

    def modify(self, f, inputs):
        if f.info.type_name == "Sigmoid" and self._feeds_swish(f):
            return inputs[0]
        if f.info.type_name == "Mul2" and self._is_swish(f):
            return F.swish(inputs[0])

    @staticmethod
    def _is_swish(mul):
        a, b = mul.inputs
        return b.parent is not None and b.parent.info.type_name == "Sigmoid" and b.parent.inputs[0] == a

    def _feeds_swish(self, sig):
        readers = sig.outputs[0].function_references
        return len(readers) == 1 and readers[0].info.type_name == "Mul2" and self._is_swish(readers[0])


class ConvBNFolder(GC.FunctionModifier):
    """A user's own BN folding (looks ahead from the conv, drops the BN), counting calls."""

    def __init__(self):
        super().__init__()
        self.seen, self.finished, self.scopes = 0, 0, []

    def modify(self, f, inputs):
        self.seen += 1
        if f.info.type_name == "BatchNormalization" and f.inputs[0].parent.info.type_name == "Convolution":
            return inputs[0]
        readers = f.outputs[0].function_references
        if f.info.type_name != "Convolution" or readers[0].info.type_name != "BatchNormalization":
            return None
        beta, gamma, mean, var = (v.d for v in readers[0].inputs[1:])
        c0 = gamma / np.sqrt(var + readers[0].info.args["eps"])
        w = nn.Variable.from_numpy_array(inputs[1].d * c0.reshape(-1, 1, 1, 1))
        b = nn.Variable.from_numpy_array((beta - mean * c0).reshape(-1) + c0.reshape(-1) * inputs[2].d)
        self.scopes = [self.get_parameter_scope(v) for v in readers[0].inputs[1:] + list(f.inputs[1:])]
        return F.convolution(inputs[0], w, b, **f.info.args)

    def __finish__(self):
        self.finished += 1
        self.seen = 0


def test_nnabla_documentation_example_runs_unchanged(net_of, hist):
    net = net_of(conv_bn_relu_affine, (2, 3, 6, 6))
    gc = GC.GraphConverter([ReLUToLeakyReLUModifier()], params=net.params)
    y = gc.convert(net.outputs[0])
    assert hist([y]) == {"Convolution": 1, "BatchNormalization": 1, "LeakyReLU": 1, "Affine": 1}
    expected = net.forward()[0]  # the original with ReLU, to compare against by hand
    h = net.forward([net.outputs[0].parent.inputs[0].parent.inputs[0]])[0]  # the BN output
    leaky = np.where(h > 0, h, 0.1 * h)
    fc_w, fc_b = net.params["fc/affine/W"].d, net.params["fc/affine/b"].d
    np.testing.assert_allclose(net.forward([y])[0], leaky.reshape(2, -1) @ fc_w + fc_b, rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, net.forward([y])[0])  # the ReLU really changed
    assert gc.last_result.counts["modified"] == 1
    net.assert_unchanged()


def test_a_subgraph_is_replaced_by_one_function(net_of, hist):
    net = net_of(lambda x: PF.affine(x * F.sigmoid(x), 3, name="fc"), (4, 5))
    y = GC.GraphConverter([SwishFusion()], params=net.params).convert(net.outputs)
    assert hist(net.outputs) == {"Sigmoid": 1, "Mul2": 1, "Affine": 1}
    assert hist(y) == {"Swish": 1, "Affine": 1}
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-5, atol=1e-6)
    net.assert_unchanged()


def test_a_sigmoid_that_is_not_part_of_a_swish_stays(net_of, hist):
    net = net_of(lambda x: F.sigmoid(x) * F.tanh(x), (4, 5))
    y = GC.GraphConverter([SwishFusion()]).convert(net.outputs)
    assert hist(y) == hist(net.outputs) == {"Sigmoid": 1, "Tanh": 1, "Mul2": 1}
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])


def test_user_modifiers_mix_with_ours_in_either_order(net_of, hist):
    net = net_of(conv_bn_relu_affine, (2, 3, 6, 6))
    for modifiers in ([GC.BatchNormalizationFoldingModifier(), ReLUToLeakyReLUModifier()],
                      [ReLUToLeakyReLUModifier(), [GC.BatchNormalizationFoldingModifier()]]):
        y = GC.GraphConverter(modifiers, params=net.params).convert(net.outputs)
        assert hist(y) == {"Convolution": 1, "LeakyReLU": 1, "Affine": 1}
        only_leaky = GC.GraphConverter([ReLUToLeakyReLUModifier()], params=net.params).convert(net.outputs)
        np.testing.assert_allclose(net.forward(y)[0], net.forward(only_leaky)[0], rtol=1e-4, atol=1e-5)
    net.assert_unchanged()


def test_finish_is_called_once_per_conversion_and_the_modifier_can_be_reused(net_of, hist):
    net = net_of(conv_bn_relu_affine, (2, 3, 6, 6))
    folder = ConvBNFolder()
    gc = GC.GraphConverter([folder], params=net.params)
    for round_ in (1, 2):
        y = gc.convert(net.outputs)
        assert folder.finished == round_ and folder.seen == 0  # reset by __finish__
        assert hist(y) == {"Convolution": 1, "ReLU": 1, "Affine": 1}
        np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-4, atol=1e-4)
    # get_parameter_scope finds every parameter, need_grad=False statistics included
    assert folder.scopes == ["bn/bn"] * 4 + ["conv/conv"] * 2
    net.assert_unchanged()


def test_preset_inputs_replace_what_the_first_function_reads(net_of):
    net = net_of(lambda x: F.relu(x) + 1, (3, 4))

    class FeedOther(GC.FunctionModifier):
        def __init__(self, first, other):
            super().__init__()
            self.init_map_func_inputs(first, [other])

    other = nn.Variable.from_numpy_array(-net.data[0])
    m = FeedOther(net.outputs[0].parent.inputs[0].parent, other)
    y = GC.GraphConverter([m]).convert(net.outputs[0])
    y.forward()
    np.testing.assert_array_equal(y.d, np.maximum(-net.data[0], 0) + 1)
    assert m._map_func_inputs == {}  # consumed, as NNabla's finish_up does


def test_lists_are_accepted_and_wrong_answers_name_the_modifier(net_of):
    net = net_of(lambda x: F.sigmoid(x), (3, 4))

    class AsList(GC.FunctionModifier):
        def modify(self, f, inputs):
            return [F.tanh(inputs[0])]

    class Wrong(GC.FunctionModifier):
        def modify(self, f, inputs):
            return 42

    y = GC.GraphConverter([AsList()]).convert(net.outputs[0])
    np.testing.assert_allclose(net.forward([y])[0], np.tanh(net.data[0]), rtol=1e-6)
    with pytest.raises(TypeError, match=r"Wrong.modify\(\) returned a int for Sigmoid"):
        GC.GraphConverter([Wrong()]).convert(net.outputs[0])
    net.assert_unchanged()


def test_a_python_function_is_the_modifiers_to_replace():
    x = nn.Variable.from_numpy_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    tapped = python_identity(x, name="PythonTap")
    y = F.relu(tapped)

    class DropTaps(GC.FunctionModifier):
        def modify(self, f, inputs):
            if f.info.type_name == "PythonTap":
                return inputs[0]

    converted = GC.GraphConverter([DropTaps()]).convert(y)
    assert [f.info.type_name for f in GC.GraphView(converted, {}).functions] == ["ReLU"]
    with pytest.raises(ValueError, match="PythonTap is a Python function"):
        GC.GraphConverter([ReLUToLeakyReLUModifier()]).convert(y)


def test_nnablas_own_function_modifier_class_runs_too(net_of, hist):
    from nnabla.experimental.graph_converters import FunctionModifier as NNablaFunctionModifier

    class NNablaStyle(NNablaFunctionModifier):
        def modify(self, f, inputs):
            if f.info.type_name == "ReLU":
                return F.sigmoid(inputs[0])

    net = net_of(conv_bn_relu_affine, (2, 3, 6, 6))
    y = GC.GraphConverter([NNablaStyle(), GC.BatchNormalizationFoldingModifier()],
                          params=net.params).convert(net.outputs)
    assert hist(y) == {"Convolution": 1, "Sigmoid": 1, "Affine": 1}
    net.assert_unchanged()


def test_what_user_code_does_to_the_original_is_reported_by_the_untouched_check(net_of):
    net = net_of(conv_bn_relu_affine, (2, 3, 6, 6))
    w = net.params["conv/conv/W"]
    kept = w.d.copy()

    class Vandal(GC.FunctionModifier):
        def modify(self, f, inputs):
            if f.info.type_name == "Convolution":
                f.inputs[1].d *= 2  # the user's own doing, not prevented

    GC.GraphConverter([Vandal()], params=net.params).convert(net.outputs)
    changes = net.changes()
    assert [c.message.split(" (")[0] for c in changes] == ["parameter 'conv/conv/W' changed values"]
    w.d = kept
    net.assert_unchanged()


def test_the_pass_needs_a_modify_method():
    with pytest.raises(TypeError, match="needs a modify"):
        FunctionModifierPass(object())
    with pytest.raises(TypeError, match="takes Modifier objects; got 3"):
        GC.GraphConverter([3])
