"""Shared helpers of the quantization / statistics / low-rank tests (not a test module)."""
from collections import OrderedDict

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np

from converters.graph_view import GraphView
from gcverify.models import ModelRegistry


def build(name, seed=0):
    return ModelRegistry.with_zoo().build(name, seed=seed)


def snapshot(model):
    """What must survive a conversion: the graph's functions and every parameter value."""
    view = GraphView(model.outputs, model.params)
    return ([f for f in view.functions], view.histogram(),
            {k: (v, v.d.copy()) for k, v in model.params.items()})


def assert_untouched(model, snap):
    functions, histogram, params = snap
    view = GraphView(model.outputs, model.params)
    assert list(view.functions) == functions and view.histogram() == histogram
    assert set(model.params) == set(params)
    for k, (var, values) in params.items():
        assert model.params[k] is var and np.array_equal(var.d, values), k


def rel_error(out, ref):
    """max |out - ref| relative to max |ref| (ResNet-50 outputs are ~1e3)."""
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def count(outputs, type_name):
    return GraphView(outputs, {}).histogram()[type_name]


def functions_of(outputs, type_name):
    return [f for f in GraphView(outputs, {}).functions if f.info.type_name == type_name]


def private_graph(build_fn, seed=0):
    """Build ``build_fn(rng)`` -> (inputs, outputs) inside a private parameter scope and give
    every parameter seeded normal values; returns (inputs, outputs, params)."""
    rng = np.random.RandomState(seed)
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        inputs, outputs = build_fn(rng)
        params = nn.get_parameters(grad_only=False)
    for v in params.values():
        v.d = rng.normal(0.0, 0.5, v.shape)
    return inputs, outputs, params


def conv_affine_graph(rng, maps=6, activation=None):
    """x (2,3,10,10) -> conv 3x3 -> activation -> affine 5: a two-layer graph for exact checks."""
    x = nn.Variable.from_numpy_array(rng.uniform(-1, 1, (2, 3, 10, 10)).astype(np.float32))
    h = PF.convolution(x, maps, (3, 3), pad=(1, 1), name="conv")
    if activation is not None:
        h = activation(h)
    return [x], [PF.affine(h, 5, name="fc")]
