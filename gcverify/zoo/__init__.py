"""Networks built from code with seeded, non-trivial parameters (no downloads).

``ZOO`` lists the built-in model specs; ``default=True`` ones form the default matrix.
``resnet50-pretrained`` loads NNabla's pretrained ResNet-50 ``.nnp`` only when it is already
on disk (see :mod:`.pretrained`); it is never downloaded and is not in the default matrix.
"""
import nnabla as nn

from ..core.model import Model, ModelSpec, seeded_inputs
from .seeding import randomize_parameters
from . import field
from .lenet import lenet
from .pretrained import build_resnet50_pretrained
from .resnet import resnet50
from .small_nets import conv1d_net, conv3d_net, mobilenet, unet
from .traps import bn_traps
from .corners import adjust_bn_corners, adjust_layout_corners, bn_corners, bn_training, layout_corners

__all__ = ["ZOO", "randomize_parameters", "build_lenet", "build_resnet50", "zoo_spec", "build_zoo_model",
           "seeded_spec"]


def _seeded_model(name, build_graph, input_shapes, seed, description="", adjust=None):
    inputs = [nn.Variable(s) for s in input_shapes]
    outputs = build_graph(*inputs)
    outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
    params = nn.get_parameters(grad_only=False)  # the builder's private scope
    randomize_parameters(outputs, params, seed=seed)
    if adjust is not None:
        adjust(params)
    return Model(name, inputs, outputs, seeded_inputs(input_shapes, seed), description=description)


def _from_code(name, graph, input_shape, description, default=True):
    """A ModelSpec building ``graph(input, test=True)`` on one seeded input of ``input_shape``."""
    return seeded_spec(name, lambda x: graph(x, test=True), [input_shape], description, default)


def seeded_spec(name, graph, input_shapes, description="", default=False, adjust=None, **fields):
    """A ModelSpec building ``graph(*inputs)`` on seeded inputs of ``input_shapes``, its weights
    and BN statistics seeded by :func:`randomize_parameters`, then ``adjust(params)`` if given;
    ``fields``: other ModelSpec fields (tolerance, accept_kept)."""
    def build(seed=0):
        return _seeded_model(name, graph, input_shapes, seed, description, adjust)
    build.__name__ = build.__qualname__ = "build_" + name.replace("-", "_")
    return ModelSpec(name, build, description, default=default, **fields)


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
    seeded_spec("attention", field.attention, [(2, 8, 16)],
                "Causal self-attention over 2x8 tokens of 16: a mask and a position table held as "
                "constants, Affine(base_axis=2) -> BN over features, LayerNorm.", default=True),
    seeded_spec("lstm", field.lstm, [(2, 4, 5)],
                "An LSTM cell unrolled over 4 steps from zero-state constants (shared weights).", default=True),
    seeded_spec("noisy_dqn", field.noisy_dqn, [(2, 3, 8, 8)],
                "Conv + BN trunk and a NoisyNet head: F.randn(seed=-1) weight noise at every forward.", default=True),
    seeded_spec("concat_bn", field.concat_bn, [(2, 3, 8, 8)],
                "A BN after a Concatenate (nothing to fold it into) and a squeeze-excitation block.", default=True),
    seeded_spec("two_inputs", field.two_inputs, [(2, 3, 8, 8), (2, 5)],
                "An image and a vector of quantile fractions: only the image has a layout.", default=True),
    seeded_spec("relu6_net", field.relu6_net, [(2, 3, 16, 16)],
                "Inverted residuals with ReLU6, a hard-sigmoid SE gate, a Swish head.", default=True),
    seeded_spec("bn_corners", bn_corners, [(2, 3, 8, 8)],
                "Every neighbourhood of a BN our folders decide on: on the graph input, forked, "
                "no_bias/no_scale, before padded/unpadded/depthwise/grouped convs and an Affine, "
                "odd axes, frozen parameters; one output each.", default=True, adjust=adjust_bn_corners),
    seeded_spec("bn_training", bn_training, [(2, 3, 8, 8)],
                "BNs without an inference form after convolutions: batch_stat=True, a computed "
                "gamma, a computed (normalized) convolution weight.", default=True),
    seeded_spec("layout_corners", layout_corners, [(2, 3, 12, 12)],
                "Dilated conv with a saturating ReLU6, dilated depthwise conv, spatial Pad/Slice/"
                "Flip/Transpose, PReLU, Split/Stack, Interpolate, a fenced Affine(base_axis=2).",
                default=True, adjust=adjust_layout_corners),
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
