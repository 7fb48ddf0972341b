"""Helpers for tests of converters and of projects that use gcverify (as pytest-regressions
ships one): zoo models by name, graphs built in a private parameter scope with seeded
values, and the verification suite's source for ``pytester`` projects.

Nothing here is needed at run time; it is imported only by tests.
"""
import nnabla as nn
import numpy as np

from converters.graph_view import GraphView

from .core.model import build_privately

__all__ = ["SUITE_SOURCE", "zoo_model", "private_graph", "conv_affine_graph", "rel_error",
           "count", "functions_of", "snapshot", "assert_untouched", "python_identity"]

# The verification suite's test module, as users write it.
SUITE_SOURCE = "def test_conversion(gc_case, gc_verify):\n    gc_verify(gc_case)\n"


def zoo_model(name, seed=0):
    """A fresh build of the zoo network ``name`` (a :class:`gcverify.Model`)."""
    from .zoo import build_zoo_model
    return build_zoo_model(name, seed=seed)


def private_graph(build_fn, seed=0):
    """Build ``build_fn(rng)`` -> (inputs, outputs) inside a private parameter scope and give
    every parameter seeded normal values; returns (inputs, outputs, params)."""
    rng = np.random.RandomState(seed)
    (inputs, outputs), params = build_privately(build_fn, rng)
    for v in params.values():
        v.d = rng.normal(0.0, 0.5, v.shape)
    return inputs, outputs, params


def conv_affine_graph(rng, maps=6, activation=None):
    """x (2,3,10,10) -> conv 3x3 -> activation -> affine 5: a two-layer graph for exact checks."""
    import nnabla.parametric_functions as PF
    x = nn.Variable.from_numpy_array(rng.uniform(-1, 1, (2, 3, 10, 10)).astype(np.float32))
    h = PF.convolution(x, maps, (3, 3), pad=(1, 1), name="conv")
    if activation is not None:
        h = activation(h)
    return [x], [PF.affine(h, 5, name="fc")]


def rel_error(out, ref):
    """max |out - ref| relative to max |ref| (ResNet-50 outputs are ~1e3)."""
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def count(outputs, type_name):
    return GraphView(outputs, {}).histogram()[type_name]


def functions_of(outputs, type_name):
    return [f for f in GraphView(outputs, {}).functions if f.info.type_name == type_name]


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


def python_identity(x, name="PythonIdentity"):
    """``y = x`` through an NNabla ``PythonFunction`` called ``name``: a function no converter
    can copy and NNabla's ``.nnp`` format cannot hold, for tests of how both refuse it."""
    from nnabla.function import PythonFunction

    class PythonIdentity(PythonFunction):
        @property
        def name(self):
            return name

        def min_outputs(self):
            return 1

        def setup_impl(self, inputs, outputs):
            outputs[0].reset_shape(inputs[0].shape, True)

        def forward_impl(self, inputs, outputs):
            outputs[0].data.copy_from(inputs[0].data)

        def backward_impl(self, inputs, outputs, propagate_down, accum):
            if propagate_down[0]:
                if accum[0]:
                    inputs[0].grad += outputs[0].grad
                else:
                    inputs[0].grad.copy_from(outputs[0].grad)

        def grad_depends_output_data(self, i, o):
            return False

        def grad_depends_input_data(self, i, j):
            return False

    with nn.auto_forward(False):
        return PythonIdentity(nn.get_current_context())(x)
