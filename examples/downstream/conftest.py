"""A downstream project's conftest: register your own model, and your own converters, with the
gcverify plugin. The converters are NNabla-style ``FunctionModifier`` subclasses run unchanged
through ``import converters as GC``; the matrix verifies them like the built-in rows."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

import converters as GC
import gcverify
from gcverify import Adds, Conversion, Functions, Removes
from gcverify.zoo import randomize_parameters


def network(x, activation=F.relu):
    """conv -> BN -> activation -> deconv -> BN -> SiLU (x * sigmoid(x))."""
    h = PF.convolution(x, 8, (3, 3), pad=(1, 1), name="enc")
    h = activation(PF.batch_normalization(h, batch_stat=False, name="enc-bn"))
    h = PF.deconvolution(h, 4, (2, 2), stride=(2, 2), name="dec")
    h = PF.batch_normalization(h, batch_stat=False, name="dec-bn")
    return h * F.sigmoid(h)


@gcverify.model("my_net", default=True)
def my_net(seed=0):
    """My network with random BN statistics (a real model would load weights)."""
    x = nn.Variable((2, 3, 16, 16))
    y = network(x)
    randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
    return x, y


class ReLUToLeakyReLUModifier(GC.FunctionModifier):
    """NNabla's documentation example, as written there."""

    def __init__(self):
        super(ReLUToLeakyReLUModifier, self).__init__()

    def modify(self, f, inputs):
        if f.info.type_name == 'ReLU':
            x = inputs[0]
            return F.leaky_relu(x)


class SiLUToSwishModifier(GC.FunctionModifier):
    """``x * sigmoid(x)`` -> ``swish(x)``: a subgraph of two functions replaced by one. At the
    Sigmoid, look ahead: if its only reader is a Mul2 by its own input, drop it (return its
    input) and remember that Mul2, which becomes the Swish."""

    def __init__(self):
        super().__init__()
        self._swish_outputs = set()

    def modify(self, f, inputs):
        if f.info.type_name == "Sigmoid":
            readers = f.outputs[0].function_references
            if len(readers) == 1 and readers[0].info.type_name == "Mul2" and f.inputs[0] in readers[0].inputs:
                self._swish_outputs.add(readers[0].outputs[0])
                return inputs[0]
        if f.info.type_name == "Mul2" and f.outputs[0] in self._swish_outputs:
            return F.swish(inputs[0])  # both operands now stand for x

    def __finish__(self):
        self._swish_outputs = set()


def _converted(model, modifier):
    gc = GC.GraphConverter([modifier], params=model.params)
    return Conversion(gc.convert(list(model.outputs)), list(model.inputs))


def written_with_leaky_relu(model):
    """What ReLU -> LeakyReLU must give: my network written with LeakyReLU, on the model's
    weights (found by name in a scope holding them)."""
    with gcverify.scope_holding(model.params):
        y = network(model.inputs[0], activation=F.leaky_relu)
    return model.forward([y])


@gcverify.converter("relu_to_leaky_relu", tolerance="exact", reference=written_with_leaky_relu,
                    layers=[Removes(Functions("ReLU")), Adds((Functions("LeakyReLU"),))])
def relu_to_leaky_relu(model):
    """ReLUToLeakyReLUModifier: exactly my network written with LeakyReLU."""
    return _converted(model, ReLUToLeakyReLUModifier())


@gcverify.converter("silu_to_swish", layers=[Removes(Functions("Sigmoid")), Removes(Functions("Mul2")),
                                             Adds((Functions("Swish"),))])
def silu_to_swish(model):
    """SiLUToSwishModifier: one Swish for each x * sigmoid(x), the same numbers (float32)."""
    return _converted(model, SiLUToSwishModifier())
