"""NNabla's extension contract for modifiers, run on our rewrite engine.

A user's modifier written for NNabla subclasses ``FunctionModifier`` and implements
``modify(self, f, inputs)``. :class:`FunctionModifierPass` runs such an object as one pass:
for every function ``f`` of the original graph, in topological order, it calls
``modify(f, inputs)`` with ``inputs`` the new graph's variables for ``f.inputs``, and reads the
answer the way NNabla does:

- ``None``: ``f`` stays; the modifier's ``_modify_as_same(f, inputs)`` copies it;
- a Variable, or a list/tuple of them (one per output of ``f``): those stand for the outputs
  of ``f``. Returning an existing variable such as ``inputs[0]`` drops ``f``; looking ahead
  (``f.outputs[0].function_references``) and skipping the functions a replacement covers is
  how a subgraph is replaced, exactly as on NNabla.

After the walk ``finish_up()`` (or ``__finish__()``) is called, once per conversion, as NNabla's
``GraphConverter`` does. Inputs preset with ``init_map_func_inputs(f, inputs)`` are given to
``modify`` for ``f`` in place of the engine's ones (positions given as None keep the engine's).

What the engine guarantees is kept: the walk follows the original graph, which it never
changes. What the user's ``modify`` itself does (writing parameters into NNabla's global scope,
changing ``f``'s inputs' values) is the user's, and the verifier's untouched check reports it.
``get_parameter_scope(v)`` looks ``v`` up among the parameters of the graph being converted
(named by the converter's ``params``, by default the global scope), not only among the
trainable parameters of the current scope as NNabla does.
"""
import contextlib
import contextvars
from collections import defaultdict

import nnabla as nn
import nnabla.function as _functions

from .graph_view import all_parameters
from .rewrite import GraphPass, call_function

__all__ = ["FunctionModifier", "FunctionModifierPass", "is_function_modifier"]

# The view of the graph being converted while a modifier's modify() runs (for
# get_parameter_scope); set and reset around each call, so nothing outlives a conversion.
_CURRENT_VIEW = contextvars.ContextVar("gc_current_view", default=None)


def is_function_modifier(obj):
    """True for an object with NNabla's ``modify(f, inputs)`` method (ours or NNabla's)."""
    return callable(getattr(obj, "modify", None))


class FunctionModifier:
    """Base class of user modifiers, as NNabla's: override ``modify(f, inputs)``.

    Example (NNabla's own documentation example runs unchanged)::

        class ReLUToLeakyReLUModifier(GC.FunctionModifier):
            def modify(self, f, inputs):
                if f.info.type_name == "ReLU":
                    return F.leaky_relu(inputs[0])

        y2 = GC.GraphConverter([ReLUToLeakyReLUModifier()]).convert(y)
    """

    def __init__(self):
        self._map_func_inputs = defaultdict(list)  # f -> preset inputs (NNabla's name)

    def modify(self, f, inputs):
        """Return None to keep ``f``, or the Variable(s) standing for its outputs."""
        return None

    def __finish__(self):
        """Called once after each conversion: reset whatever state ``modify`` kept."""

    def finish_up(self):
        self._map_func_inputs = defaultdict(list)
        self.__finish__()

    def init_map_func_inputs(self, f, inputs):
        """Give ``modify`` these inputs for ``f`` (e.g. replaced graph inputs)."""
        self._map_func_inputs[f] = list(inputs)

    def get_parameter_scope(self, v):
        """The scope of parameter ``v`` (``'conv1'`` for ``'conv1/W'``), or ``''``."""
        view = _CURRENT_VIEW.get()
        name = view.param_name(v) if view is not None else None
        if name is None:
            name = next((k for k, p in all_parameters().items() if p is v), "")
        return name.rsplit("/", 1)[0] if "/" in name else ""

    def _modify_as_same(self, f, inputs):
        """``f`` rebuilt on ``inputs``: its output, or a tuple of them."""
        if not hasattr(_functions, f.info.type_name):
            raise ValueError("{} is a Python function: NNabla cannot copy it, so modify() must "
                             "return what stands for its output".format(f.info.type_name))
        outs = call_function(f.info.type_name, list(inputs), f.info.args, len(f.outputs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _call_function(self, type_name, inputs, args):
        outs = call_function(type_name, list(inputs), args)
        return outs[0] if len(outs) == 1 else tuple(outs)

    @staticmethod
    def _force_list(o):
        return list(o) if isinstance(o, (list, tuple)) else [o]

    @staticmethod
    def _copy_inputs(inputs):
        return [v.get_unlinked_variable(need_grad=v.need_grad) for v in inputs]


def _preset(modifier, f, inputs):
    preset = getattr(modifier, "_map_func_inputs", None) or {}
    given = preset.get(f) if hasattr(preset, "get") else None
    if not given:
        return inputs
    return [g if g is not None else v for g, v in zip(list(given) + [None] * len(inputs), inputs)]


def _as_outputs(out, f, who):
    if isinstance(out, nn.Variable):
        return [out]
    if isinstance(out, (list, tuple)) and all(isinstance(v, nn.Variable) for v in out):
        return list(out)
    raise TypeError("{}.modify() returned a {} for {}: return None, an nnabla.Variable or a list "
                    "of them".format(who, type(out).__name__, f.info.type_name))


class FunctionModifierPass(GraphPass):
    """Runs an object with NNabla's ``modify(f, inputs)`` contract as one engine pass."""

    def __init__(self, modifier):
        if not is_function_modifier(modifier):
            raise TypeError("a function modifier needs a modify(f, inputs) method; got {!r}".format(
                modifier))
        self.modifier = modifier
        self.name = type(modifier).__name__

    def rebuilds(self, f):
        return True  # a Python function is the user's to replace (else _modify_as_same says so)

    def rewrite(self, f, inputs, b, plan):
        m = self.modifier
        inputs = _preset(m, f, list(inputs))
        token = _CURRENT_VIEW.set(b.view)
        context = nn.context_scope(b.context) if b.context is not None else contextlib.nullcontext()
        try:
            with context:
                out = m.modify(f, list(inputs))
                replaced = out is not None
                if out is None:
                    same = getattr(m, "_modify_as_same", None)
                    out = same(f, inputs) if callable(same) else b.copy(f, inputs)
        finally:
            _CURRENT_VIEW.reset(token)
        if replaced:
            b.note(f, "modified", "by {}".format(self.name))
        return _as_outputs(out, f, self.name)

    def finish_outputs(self, view, b, plan, outputs):
        finish = getattr(self.modifier, "finish_up", None) or getattr(self.modifier, "__finish__", None)
        if callable(finish):
            finish()
        return outputs
