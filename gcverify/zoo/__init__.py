"""Networks built from code with seeded, non-trivial parameters (no downloads).

``ZOO`` lists the built-in model specs; ``default=True`` ones form the default matrix.
"""
import nnabla as nn
import numpy as np

from ..models import Model, ModelSpec
from .init import randomize_parameters
from .lenet import lenet
from .resnet import resnet50


def _seeded_model(name, build_graph, input_shapes, seed, description=""):
    rng = np.random.RandomState(seed)
    inputs = [nn.Variable(s) for s in input_shapes]
    outputs = build_graph(*inputs)
    outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
    randomize_parameters(outputs, nn.get_parameters(grad_only=False), seed=seed)
    data = [rng.uniform(-1.0, 1.0, s).astype(np.float32) for s in input_shapes]
    return Model(name, inputs, outputs, data, description=description)


def build_lenet(seed=0):
    """LeNet of seed 003, test mode, batch 4, 3x28x28 input."""
    return _seeded_model("lenet", lambda x: lenet(x, test=True), [(4, 3, 28, 28)], seed,
                         build_lenet.__doc__)


def build_resnet50(seed=0):
    """ResNet-50 of seed 000, batch 1, 3x224x224 input, random BN statistics."""
    return _seeded_model("resnet50", lambda x: resnet50(x, test=True), [(1, 3, 224, 224)], seed,
                         build_resnet50.__doc__)


ZOO = (
    ModelSpec("lenet", build_lenet, build_lenet.__doc__, default=True),
    ModelSpec("resnet50", build_resnet50, build_resnet50.__doc__, default=True),
)
