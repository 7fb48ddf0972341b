"""Networks built from code with seeded, non-trivial parameters (no downloads).

``ZOO`` lists the built-in model specs; ``default=True`` ones form the default matrix.
``resnet50-pretrained`` loads NNabla's pretrained ResNet-50 ``.nnp`` only when it is already
on disk (see :mod:`.pretrained`); it is never downloaded and is not in the default matrix.
"""
import nnabla as nn

from ..core.model import Model, ModelSpec, seeded_inputs
from .seeding import randomize_parameters
from .lenet import lenet
from .pretrained import build_resnet50_pretrained
from .resnet import resnet50
from .small_nets import conv1d_net, conv3d_net, mobilenet, unet
from .traps import bn_traps

__all__ = ["ZOO", "randomize_parameters", "build_lenet", "build_resnet50", "zoo_spec", "build_zoo_model"]


def _seeded_model(name, build_graph, input_shapes, seed, description=""):
    inputs = [nn.Variable(s) for s in input_shapes]
    outputs = build_graph(*inputs)
    outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
    randomize_parameters(outputs, nn.get_parameters(grad_only=False), seed=seed)
    return Model(name, inputs, outputs, seeded_inputs(input_shapes, seed), description=description)


def _from_code(name, graph, input_shape, description, default=True):
    """A ModelSpec building ``graph(input, test=True)`` on one seeded input of ``input_shape``."""
    def build(seed=0):
        return _seeded_model(name, lambda x: graph(x, test=True), [input_shape], seed, description)
    build.__name__ = build.__qualname__ = "build_" + name.replace("-", "_")
    return ModelSpec(name, build, description, default=default)


ZOO = (
    _from_code("lenet", lenet, (4, 3, 28, 28),
               "LeNet of seed 003, test mode, batch 4, 3x28x28 input."),
    _from_code("resnet50", resnet50, (1, 3, 224, 224),
               "ResNet-50 of seed 000, batch 1, 3x224x224 input, random BN statistics."),
    _from_code("unet", unet, (2, 3, 32, 32),
               "U-Net-like: Max/Average/SumPooling, Unpooling, (grouped) Deconvolution, "
               "Concatenate skips; batch 2, 3x32x32."),
    _from_code("mobilenet", mobilenet, (2, 3, 32, 32),
               "MobileNet-like: depthwise and grouped convolutions, inverted residual; "
               "batch 2, 3x32x32."),
    _from_code("conv1d", conv1d_net, (2, 4, 64),
               "1D conv net over (N, C, L): BN, pooling, affine head; batch 2, 4x64."),
    _from_code("conv3d", conv3d_net, (1, 2, 8, 16, 16),
               "3D conv net over (N, C, D, H, W): BN, pooling, deconvolution; batch 1, 2x8x16x16."),
    _from_code("bn_traps", bn_traps, (2, 3, 8, 8),
               "Where NNabla's BN fold is silently wrong: shared weight with two BNs, square "
               "Affine->BN, conv->BN->(padded) conv, Deconvolution->BN; one output each."),
    ModelSpec("resnet50-pretrained", build_resnet50_pretrained,
              build_resnet50_pretrained.__doc__.strip().splitlines()[0], default=False),
)

build_lenet, build_resnet50 = ZOO[0].builder, ZOO[1].builder


def zoo_spec(name):
    """The zoo's spec called ``name``; a KeyError listing the zoo otherwise."""
    for spec in ZOO:
        if spec.name == name:
            return spec
    raise KeyError("no zoo model {!r}; the zoo has {}".format(name, ", ".join(s.name for s in ZOO)))


def build_zoo_model(name, seed=0):
    """A fresh build of the zoo network ``name``."""
    return zoo_spec(name).build(seed=seed)
