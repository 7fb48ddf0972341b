"""A read-only view of an NNabla graph, built once from its output variable(s).

Everything a pass or a check asks about a graph is answered here in O(1) after one O(N)
walk: functions in topological order, the producer and consumers of each variable, the
graph inputs, parameters and their names, a histogram of function types. The view never
changes the graph (NNabla's ``visit`` on an ``F.sink`` would add references to it).
"""
from collections import Counter

import nnabla as nn
import nnabla.parameter

__all__ = ["GraphView", "histogram_diff", "all_parameters", "as_outputs", "parameter_names",
           "parameter_source", "PARAMETER_SLOTS"]

# Input positions that hold learnable parameters or statistics, per function type. A leaf
# variable in such a slot is a parameter even when no parameter dictionary names it.
PARAMETER_SLOTS = {
    "Affine": (1, 2),
    "Convolution": (1, 2),
    "Deconvolution": (1, 2),
    "DepthwiseConvolution": (1, 2),
    "DepthwiseDeconvolution": (1, 2),
    "BatchNormalization": (1, 2, 3, 4),
    "FusedBatchNormalization": (1, 2, 3, 4),
    "Embed": (1,),
    "PReLU": (1,),
}


def all_parameters():
    """Every parameter registered in NNabla's global scope, by full name (root-relative)."""
    # get_parameters() reads the *current* scope; an empty name makes the root current.
    with nn.parameter_scope("", nnabla.parameter.root_scope):
        return nn.get_parameters(grad_only=False)


def parameter_names(params):
    """``params`` as a ``{name: Variable}`` dict (None: the global scope); TypeError otherwise."""
    if params is None:
        return all_parameters()
    if not hasattr(params, "items"):
        raise TypeError("params must be a {{name: Variable}} dict, not a {}".format(
            type(params).__name__))
    return dict(params)


def parameter_source(v):
    """The leaf whose values ``v`` holds, through value-preserving Reshapes (e.g. a layout
    pass's depthwise weight seen as a grouped one), or None when the graph computes ``v``."""
    while v.parent is not None:
        if v.parent.info.type_name != "Reshape":
            return None
        v = v.parent.inputs[0]
    return v


def as_outputs(outputs):
    """The graph's output variables as a list; a TypeError naming anything else."""
    if isinstance(outputs, nn.Variable):
        return [outputs]
    try:
        outputs = list(outputs)
    except TypeError:
        raise TypeError("a graph is given by an nnabla.Variable or a list of them, not a {}".format(
            type(outputs).__name__)) from None
    for i, o in enumerate(outputs):
        if not isinstance(o, nn.Variable):
            raise TypeError("output {} is a {}, not an nnabla.Variable".format(i, type(o).__name__))
    if not outputs:
        raise ValueError("a graph needs at least one output variable")
    return outputs


class GraphView:
    """Read-only view of the graph that computes ``outputs``.

    Args:
        outputs: an ``nn.Variable`` or a list of them.
        params: ``{name: Variable}`` naming the parameters; defaults to the whole global
            parameter scope, so graphs built with ``PF`` are named without help.
    """

    def __init__(self, outputs, params=None):
        self.outputs = tuple(as_outputs(outputs))
        self.functions = tuple(self._topological_order(self.outputs))
        self._position = {f: i for i, f in enumerate(self.functions)}
        self._consumers = {}
        for f in self.functions:
            for i, v in enumerate(f.inputs):
                self._consumers.setdefault(v, []).append((f, i))
        self._output_set = set(self.outputs)
        names = parameter_names(params)
        self._param_name = {v: k for k, v in names.items()}
        self.inputs, self.parameters = self._classify_leaves()

    @staticmethod
    def _topological_order(outputs):
        # Iterative DFS (ResNet-scale graphs would exceed Python's recursion limit
        # when chains get deep). A function is emitted after all its producers.
        order, done, on_stack = [], set(), set()
        for out in outputs:
            if out.parent is None or out.parent in done:
                continue
            stack = [(out.parent, 0)]
            on_stack.add(out.parent)
            while stack:
                f, i = stack.pop()
                inputs = f.inputs
                if i < len(inputs):
                    stack.append((f, i + 1))
                    p = inputs[i].parent
                    if p is not None and p not in done and p not in on_stack:
                        on_stack.add(p)
                        stack.append((p, 0))
                else:
                    on_stack.discard(f)
                    done.add(f)
                    order.append(f)
        return order

    def _classify_leaves(self):
        inputs, params, seen = [], {}, set()
        for f in self.functions:
            slots = PARAMETER_SLOTS.get(f.info.type_name, ())
            for i, v in enumerate(f.inputs):
                if v.parent is not None or v in seen:
                    continue
                seen.add(v)
                if v in self._param_name or i in slots:
                    params[v] = self._param_name.get(v)
                else:
                    inputs.append(v)
        for v in self.outputs:  # an output that is itself a leaf is an input passed through
            if v.parent is None and v not in seen:
                seen.add(v)
                inputs.append(v)
        return tuple(inputs), params

    # --- structure -------------------------------------------------------------------
    def producer(self, v):
        return v.parent if v.parent in self._position else None

    def consumers(self, v):
        """Functions of this graph that read ``v``, as ``(function, input_index)`` pairs."""
        return tuple(self._consumers.get(v, ()))

    def is_output(self, v):
        return v in self._output_set

    def uses(self, v):
        """How many places read ``v``: consumers inside the graph plus being an output."""
        return len(self._consumers.get(v, ())) + (1 if v in self._output_set else 0)

    def sole_consumer(self, v):
        """The one function reading ``v``, or None when ``v`` forks or is a graph output."""
        users = self._consumers.get(v, ())
        if len(users) == 1 and v not in self._output_set:
            return users[0][0]
        return None

    def position(self, f):
        return self._position[f]

    def __len__(self):
        return len(self.functions)

    def __iter__(self):
        return iter(self.functions)

    def __contains__(self, f):
        return f in self._position

    # --- parameters ------------------------------------------------------------------
    def is_parameter(self, v):
        return v in self.parameters

    def param_name(self, v):
        """The parameter's registered name, or None when no dictionary names it."""
        return self._param_name.get(v)

    def describe(self, f):
        """A short human name for a function: its type and the scope of its parameters."""
        names = [self._param_name[v] for v in f.inputs[1:] if v in self._param_name]
        if names:
            return "{} '{}'".format(f.info.type_name, parameter_scope(names))
        return "{} #{}".format(f.info.type_name, self._position.get(f, -1))

    # --- summaries -------------------------------------------------------------------
    def histogram(self):
        return Counter(f.info.type_name for f in self.functions)


# the parameter names of nnabla.parametric_functions: a scope ends before them
_PARAMETER_LEAVES = frozenset(("W", "b", "gamma", "beta", "mean", "var", "alpha", "W_cl"))


def parameter_scope(names):
    """The scope of a layer from its parameters' names: their common path ('conv1/conv' of
    'conv1/conv/W' and 'conv1/conv/b'), or what comes before the PF parameter name, so that
    a converted copy ('conv1/conv/W/bn_folded') still names its layer."""
    parts = [n.split("/") for n in names]
    common = []
    for column in zip(*parts):
        if len(set(column)) > 1:
            break
        common.append(column[0])
    if len(parts) > 1 and common:
        return "/".join(common)
    first = parts[0]
    for i in range(len(first) - 1, 0, -1):
        if first[i] in _PARAMETER_LEAVES:
            return "/".join(first[:i])
    return "/".join(first[:-1]) or first[0]


def histogram_diff(before, after):
    """What a conversion removed and added, per function type: ``(removed, added)``."""
    before, after = Counter(before), Counter(after)
    return dict(before - after), dict(after - before)
