"""The rewrite engine: rebuild a graph function by function from an old->new variable map.

A pass is configuration plus two hooks. ``plan(view)`` looks at the whole read-only graph
first (guards, matches, reasons to decline); ``rewrite(f, inputs, b, plan)`` is then asked,
for every function in topological order, what the new graph computes in its place:

- return ``None``: copy ``f`` onto its new inputs;
- return a Variable (or a sequence, one per output of ``f``): those stand for its outputs,
  which also drops ``f`` when they are existing variables such as ``inputs[0]``.

Nothing is shared with the original graph except its leaves (graph inputs and parameters
that the pass leaves alone), so the original graph, its parameter values and NNabla's
global parameter scope are never changed. Parameters a pass creates (folded weights,
transposed kernels) belong to the result, not to the global scope, which is why converting
again after the weights changed can never pick up stale values by name.
"""
from collections import Counter, namedtuple

import nnabla as nn
import nnabla.function as _functions
import nnabla.parameter
import numpy as np

from .fast_rebuild import fast_rebuild
from .graph_view import GraphView, as_outputs, parameter_names

__all__ = ["GraphPass", "Builder", "Rewrite", "Event", "rebuild", "run_passes", "call_function",
           "ConversionWarning"]

Event = namedtuple("Event", "function action reason")


class ConversionWarning(UserWarning):
    """A conversion left something as it was that the user most likely wanted converted
    (e.g. a BatchNormalization in training mode); the Rewrite's events say the same."""


def call_function(type_name, inputs, args, n_outputs=1, context=None):
    """Create an NNabla function of ``type_name`` with ``args`` on ``inputs``; returns a list."""
    try:
        cls = getattr(_functions, type_name)
    except AttributeError:
        raise ValueError("NNabla has no function named {!r}".format(type_name)) from None
    ctx = context if context is not None else nn.get_current_context()
    out = cls(ctx, **args)(*inputs, n_outputs=n_outputs, auto_forward=False)
    return list(out) if isinstance(out, (tuple, list)) else [out]


class Builder:
    """What a pass uses to build the new graph; one per rebuild."""

    def __init__(self, view, context, taken_names=()):
        self.view = view
        self.context = context
        self._taken = set(taken_names)
        self._map = {}
        self.new_parameters = {}
        self.events = []

    # --- variables -------------------------------------------------------------------
    def new(self, v):
        """The new graph's variable for the original ``v`` (leaves map to themselves)."""
        return self._map.get(v, v)

    def bind(self, old, new):
        self._map[old] = new

    def mapping(self):
        """A copy of the old->new variable map built so far."""
        return dict(self._map)

    # --- functions -------------------------------------------------------------------
    def call(self, type_name, inputs, args, n_outputs=1):
        return call_function(type_name, inputs, args, n_outputs, self.context)

    def copy(self, f, inputs):
        return self.call(f.info.type_name, inputs, f.info.args, len(f.outputs))

    def parameter(self, like, array, suffix, need_grad=None):
        """A new parameter holding ``array``, named after the parameter it derives from."""
        array = np.asarray(array)
        var, buffer = self.parameter_buffer(like, array.shape, suffix, need_grad, array.dtype)
        buffer[...] = array
        return var

    def parameter_buffer(self, like, shape, suffix, need_grad=None, dtype=np.float32):
        """A new parameter of ``shape`` and its writable numpy buffer ``(var, ndarray)``.

        Writing the values straight into NNabla's memory (e.g. ``np.multiply(w, s,
        out=buffer)``) avoids a temporary copy of every folded weight.
        """
        var = nn.Variable(tuple(shape), need_grad=(
            like.need_grad if need_grad is None and like is not None else bool(need_grad)))
        buffer = var.data.get_data("w", dtype=dtype)  # one lookup; .d would cost the same
        self.adopt(var, like, suffix)
        return var, buffer

    def adopt(self, var, like, suffix):
        """List an existing variable (a view of a parameter, a recorder's state) among the
        result's new parameters, named after ``like`` (a parameter, or a name) + ``suffix``."""
        base = like if isinstance(like, str) else (
            self.view.param_name(like) if like is not None else None)
        name = "{}/{}".format(base or "param", suffix)
        while name in self.new_parameters or name in self._taken:  # e.g. a shared weight folded twice
            name += "_"
        self.new_parameters[name] = var
        return var

    # --- the record ------------------------------------------------------------------
    def note(self, f, action, reason=""):
        """Record what happened to ``f``; ``action`` is e.g. folded, removed, kept, replaced."""
        self.events.append(Event(self.view.describe(f), action, reason))


class Rewrite:
    """The result of running passes: the new outputs and what happened on the way."""

    def __init__(self, outputs, input_map, new_parameters, events, single=False, var_map=None):
        self.single = single  # the user passed one Variable, not a list
        self.outputs = list(outputs)
        # original variable -> the new graph's variable standing for it (for diagnostics:
        # comparing intermediate values finds the first function whose output diverges)
        self.var_map = dict(var_map or {})
        self.input_map = dict(input_map)
        self.new_parameters = dict(new_parameters)
        self.events = list(events)

    @property
    def counts(self):
        return Counter(e.action for e in self.events)

    def reasons(self, action="kept"):
        return [e for e in self.events if e.action == action]

    def register(self, scope, overwrite=False):
        """Put the new parameters into NNabla's global scope under ``scope`` (the user asks)."""
        if not scope or not isinstance(scope, str):
            raise ValueError("register() needs a non-empty scope name, got {!r}".format(scope))
        with nn.parameter_scope(scope):
            existing = nn.get_parameters(grad_only=False)
            clash = sorted(k for k in self.new_parameters if k in existing)
            if clash and not overwrite:
                raise ValueError("parameters already exist under scope {!r}: {}; pass "
                                 "overwrite=True to replace them".format(scope, ", ".join(clash[:5])))
            for name, var in self.new_parameters.items():
                nnabla.parameter.set_parameter(name, var)


class GraphPass:
    """Base of every pass. Subclasses hold configuration only: no state survives a run."""

    name = "pass"

    def plan(self, view):
        """Look at the whole graph before rebuilding; whatever is returned reaches rewrite()."""
        return None

    def rewrite(self, f, inputs, b, plan):
        return None

    def rebuilds(self, f):
        """Whether this pass builds something in place of ``f`` although NNabla cannot copy it
        (a Python function such as a recorder); the engine refuses those otherwise."""
        return False

    def input_map(self, view, b, plan):
        """Replace graph inputs before the walk (e.g. channel-last inputs): {old: new}."""
        return {}

    def finish_outputs(self, view, b, plan, outputs):
        """The new graph's outputs, one per original output: a last look after the walk
        (e.g. a graph input that is also an output, which no function computes)."""
        return outputs

    def __call__(self, outputs, params=None, context=None):
        return run_passes([self], outputs, params=params, context=context)


def rebuild(view, graph_pass, context=None, taken_names=()):
    """Run one pass over ``view``; returns (new outputs, builder, replaced inputs)."""
    for f in view.functions:  # refused before anything is built
        if not hasattr(_functions, f.info.type_name) and not graph_pass.rebuilds(f):
            raise ValueError("{} is not an NNabla function type (a Python function, "
                             "nnabla.function.PythonFunction?): a conversion cannot rebuild it; "
                             "convert the graph without it".format(view.describe(f)))
    b = Builder(view, context, taken_names)
    plan = graph_pass.plan(view)
    replaced_inputs = graph_pass.input_map(view, b, plan)
    for old, new in replaced_inputs.items():
        b.bind(old, new)
    for f in view.functions:
        inputs = [b.new(v) for v in f.inputs]
        out = graph_pass.rewrite(f, inputs, b, plan)
        if out is None:
            out = b.copy(f, inputs)
        elif isinstance(out, nn.Variable):
            out = [out]
        if len(out) != len(f.outputs):
            raise RuntimeError("pass {} gave {} outputs for {} which has {}".format(
                graph_pass.name, len(out), view.describe(f), len(f.outputs)))
        for old, new in zip(f.outputs, out):
            b.bind(old, new)
    outputs = graph_pass.finish_outputs(view, b, plan, [b.new(o) for o in view.outputs])
    return outputs, b, replaced_inputs


def run_passes(passes, outputs, params=None, context=None):
    """Apply passes in order, each on the previous one's result; returns a :class:`Rewrite`.

    Runs under :func:`fast_rebuild` (NNabla's failing imports short-circuited, the cyclic
    collector paused): both are undone exactly when it returns or raises."""
    with fast_rebuild():
        return _run_passes(passes, outputs, params, context)


def _run_passes(passes, outputs, params, context):
    single = isinstance(outputs, nn.Variable)
    names = parameter_names(params)
    input_map, new_params, events, var_map = {}, {}, [], None
    # Never list() a Variable: NNabla's __getitem__ would slice it element by element.
    current = as_outputs(outputs)
    for graph_pass in passes:
        view = GraphView(current, names)
        current, b, replaced = rebuild(view, graph_pass, context, taken_names=names)
        for old, new in replaced.items():  # chain: original input -> latest replacement
            origin = next((k for k, v in input_map.items() if v is old), old)
            input_map[origin] = new
        new_params.update(b.new_parameters)
        names.update(b.new_parameters)
        events.extend(b.events)
        step = b.mapping()
        var_map = step if var_map is None else {k: step.get(v, v) for k, v in var_map.items()}
    return Rewrite(current, input_map, new_params, events, single=single, var_map=var_map)
