"""A converted graph as an ``.nnp`` file, written with NNabla's own saver and read back with
NNabla's own loader (``nnabla.utils.save.save``, ``nnabla.utils.nnp_graph.NnpLoader``).

What the file holds (:func:`write_nnp`): one network (the converted graph) and one executor
naming the variables to feed and to read, so ``nnabla_cli infer`` and ``NnpLoader`` users
know what to do with it. Conventions, because NNabla's format has no field for them:

- **Layouts are in the names.** An input the conversion moved (``input_perms[i]``, e.g.
  channel-last) is called ``<name>_nhwc`` (``_nlc`` for 1D, ``_ndhwc`` for 3D, otherwise
  ``_t0231``-style axes), and so is an output left in a moved layout: feed ``x_nhwc`` NHWC
  data. Unmoved variables keep their names (``x``, ``y``; ``x1``, ``y1``... for several).
- **Parameters are saved under their names where NNabla's scope can hold them.** NNabla
  keeps parameters in nested scopes, so ``conv/W`` and ``conv/W/bn_folded`` cannot both
  exist; only the parameters the graph reads are saved, and a name whose prefix is another
  saved parameter becomes ``conv/W_bn_folded`` (reported in :attr:`NnpLayout.renamed`).
- **Every leaf that is not an input is saved as a parameter** (constants the graph holds,
  unnamed new weights as ``constant_<k>``): NNabla's saver would otherwise write such a leaf
  as a data buffer and lose its values.

What the format cannot hold raises :class:`UnsaveableGraph` naming it, before anything is
written: a Python function (``nnabla.function.PythonFunction``; NNabla's saver writes its
name and the loader then refuses it), an output that no function computes.
"""
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List

import nnabla as nn
import nnabla.function as _functions
import numpy as np

from converters.graph_view import GraphView

from ..core.layouts import channel_last_perm
from ..core.model import scope_holding

__all__ = ["UnsaveableGraph", "NnpLayout", "LoadedNetwork", "layout_tag", "plan_layout",
           "python_functions", "write_nnp", "load_network", "NETWORK", "EXECUTOR"]

NETWORK, EXECUTOR = "converted", "runtime"
_CHANNEL_LAST_TAGS = {3: "nlc", 4: "nhwc", 5: "ndhwc"}


class UnsaveableGraph(ValueError):
    """The graph holds something NNabla's ``.nnp`` format cannot hold (the message says what)."""


@dataclass
class NnpLayout:
    """What a written file holds: its network and executor names, the executor's data and
    output variable names (in the conversion's input and output order), the parameters by
    saved name and the names that had to change (``{name in the conversion: saved name}``)."""

    network: str
    executor: str
    input_names: List[str]
    output_names: List[str]
    parameters: Dict[str, object] = field(default_factory=dict)
    renamed: Dict[str, str] = field(default_factory=dict)

    @property
    def parameter_bytes(self):
        return sum(int(np.prod(v.shape)) * np.dtype(v.data.dtype).itemsize
                   for v in self.parameters.values())


def layout_tag(perm):
    """The name suffix of a variable moved by ``transpose`` axes ``perm``: ``nhwc`` for
    channel-last 2D, ``nlc`` / ``ndhwc`` for 1D / 3D, ``t`` + axes otherwise; None for none."""
    if perm is None or tuple(perm) == tuple(range(len(perm))):
        return None
    if tuple(perm) == channel_last_perm(len(perm)) and len(perm) in _CHANNEL_LAST_TAGS:
        return _CHANNEL_LAST_TAGS[len(perm)]
    return "t" + "".join(str(a) for a in perm)


def _names(given, count, stem, perms):
    names = list(given) if given else [stem if count == 1 else "{}{}".format(stem, i) for i in range(count)]
    if len(names) != count:
        raise ValueError("{} names given for {} {}s".format(len(names), count, stem))
    tags = [layout_tag(p) for p in (perms or [None] * count)] + [None] * count
    return [n + "_" + tags[i] if tags[i] and not n.endswith("_" + tags[i]) else n
            for i, n in enumerate(names)]


def python_functions(view):
    """Descriptions of the functions of ``view`` that are Python functions, not NNabla's."""
    return [view.describe(f) for f in view.functions if not hasattr(_functions, f.info.type_name)]


def _tree_names(names):
    """``{name: saved name}`` where no saved name is a scope of another (see the module doc)."""
    full, taken, out = set(names), set(), {}
    for name in sorted(names, key=lambda n: n.count("/")):  # shorter paths keep their names
        parts = name.split("/")
        new = name
        for k in range(1, len(parts)):
            if "/".join(parts[:k]) in full:
                new = "/".join(parts[:k]) + "_" + "_".join(parts[k:])
                break
        while new in taken or (new != name and new in full):
            new += "_"
        taken.add(new)
        out[name] = new
    return out


def plan_layout(conversion, network=NETWORK, executor=EXECUTOR, input_names=None, output_names=None):
    """The :class:`NnpLayout` of ``conversion`` (a Conversion); UnsaveableGraph when NNabla's
    format cannot hold it."""
    view = GraphView(conversion.outputs, conversion.parameters)
    python = python_functions(view)
    if python:
        raise UnsaveableGraph("{} is a Python function ({} in all), which NNabla's .nnp format "
                              "cannot hold".format(python[0], len(python)))
    for i, o in enumerate(conversion.outputs):
        if o.parent is None:
            raise UnsaveableGraph("output {} is a leaf (no function computes it); an .nnp "
                                  "network cannot name it as an output".format(i))
    fed = set(conversion.inputs)
    named, k = {}, 0
    for v, name in view.parameters.items():
        if name is None or name in named:
            name, k = "constant_{}".format(k), k + 1
        named[name] = v
    for v in view.inputs:
        if v not in fed:  # a constant the graph holds, not a stated input
            named["constant_{}".format(k)], k = v, k + 1
    saved = _tree_names(list(named))
    return NnpLayout(network, executor,
                     _names(input_names, len(conversion.inputs), "x", conversion.input_perms),
                     _names(output_names, len(conversion.outputs), "y", conversion.output_perms),
                     {saved[n]: v for n, v in named.items()},
                     {n: s for n, s in saved.items() if n != s})


def write_nnp(path, conversion, layout=None, extra_names=None):
    """Write ``conversion`` to ``path`` (which must end in ``.nnp``: NNabla's saver picks the
    format from the extension) with NNabla's saver; returns the :class:`NnpLayout`.
    ``extra_names``: ``{name: variable}`` naming intermediate variables too (e.g. the
    statistics taps of a calibration graph)."""
    layout = layout or plan_layout(conversion)
    from nnabla.utils.save import save
    read = set(GraphView(conversion.outputs, {}).inputs)
    data = [(n, x) for n, x in zip(layout.input_names, conversion.inputs) if x in read]
    names = dict(extra_names or {})
    names.update(data)
    outputs = OrderedDict()  # an output listed twice is saved once, under its first name
    for name, o in zip(layout.output_names, conversion.outputs):
        if not any(v is o for v in outputs.values()):
            outputs[name] = o
    batch = conversion.inputs[0].shape[0] if conversion.inputs and conversion.inputs[0].ndim else 1
    contents = {
        "networks": [{"name": layout.network, "batch_size": batch, "outputs": outputs, "names": names}],
        "executors": [{"name": layout.executor, "network": layout.network,
                       "data": [n for n, _ in data],
                       "output": [_output_name(outputs, o) for o in conversion.outputs],
                       "no_image_normalization": True}],
    }
    with scope_holding(layout.parameters):
        # variable_batch_size=True (NNabla's default) rewrites Affine's base_axis to 1 and
        # Reshape shapes to -1 so that the batch may vary: an Affine over (N, T, D) tokens
        # with base_axis=2 would come back as an Affine over T*D features. The file must
        # compute what was verified: the graph is written as it is.
        save(path, contents, variable_batch_size=False)
    return layout


def _output_name(outputs, o):
    return next(n for n, v in outputs.items() if v is o)


@dataclass
class LoadedNetwork:
    """A network built by NNabla's loader: the executor's data and output variables in its
    order, the parameters it loaded (a private scope's) and every variable by name."""

    inputs: List[object]
    outputs: List[object]
    parameters: Dict[str, object]
    data_names: List[str]
    output_names: List[str]
    variables: Dict[str, object] = field(default_factory=dict)


def load_network(path, network=None, executor=None, batch_size=None):
    """Build ``network`` of the ``.nnp`` at ``path`` with ``NnpLoader`` in a private parameter
    scope (never the global one). Its inputs and outputs are those ``executor`` (default: the
    first executor of ``network``, else the file's first) names."""
    from nnabla.utils.nnp_graph import NnpLoader
    if not os.path.isfile(path):
        raise FileNotFoundError("no .nnp file at {!r}".format(path))
    loader = NnpLoader(path)
    executors = [e.proto for e in getattr(loader.g, "executors", {}).values()]
    chosen = [e for e in executors if (executor is None or e.name == executor)
              and (network is None or e.network_name == network)]
    if not chosen:
        raise ValueError("{!r} has no executor{}{}".format(
            path, " {!r}".format(executor) if executor else "",
            " for network {!r}".format(network) if network else ""))
    proto = chosen[0]
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        net = loader.get_network(proto.network_name, batch_size=batch_size)
        params = nn.get_parameters(grad_only=False)
    data_names = [d.variable_name for d in proto.data_variable]
    output_names = [o.variable_name for o in proto.output_variable]
    return LoadedNetwork([net.variables[n] for n in data_names], [net.variables[n] for n in output_names],
                         dict(params), data_names, output_names, dict(net.variables))
