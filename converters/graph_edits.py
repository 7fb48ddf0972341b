"""Graph edits: replace inputs, remove functions, stop parameter gradients, run BNs on their
running statistics, prune output channels, add zero biases.

- :class:`ReplaceInputs` rebuilds the graph reading other variables in place of some of its
  leaves (``copy_value``: they first receive the replaced leaves' data and gradients).
- :class:`RemoveFunctions` drops functions of the listed types: each one's output becomes its
  input 0, so ``y = g(x)`` reads ``x`` directly. Only where that is well formed: a function
  with several outputs, or whose output shape differs from its input's, is kept with the
  reason (its readers would see another shape).
- :class:`StopParameterGradients` reads every parameter through a variable sharing its memory
  with ``need_grad=False``: values are the same, no gradient reaches the parameters.
- :class:`UseRunningStatistics` turns ``batch_stat=True`` BatchNormalization and
  FusedBatchNormalization into ``batch_stat=False`` ones, on the same inputs.
- :class:`PruneChannels` zeroes the output channels whose weights' sum of squares is not
  above the threshold (:mod:`.prune_math`), weight and bias alike.
- :class:`AddZeroBias` gives a bias of zeros to a bias-less inner-product layer next to a
  BatchNormalization: ``W x`` and ``W x + 0`` are equal.
"""
import numbers

import numpy as np
import nnabla as nn

from . import prune_math
from .fixed_point import check_function_names
from .graph_view import parameter_source
from .rewrite import Event, GraphPass

__all__ = ["ReplaceInputs", "RemoveFunctions", "StopParameterGradients", "UseRunningStatistics",
           "PruneChannels", "AddZeroBias", "check_type_names"]

_BATCH_NORMS = ("BatchNormalization", "FusedBatchNormalization")


def check_type_names(names, what):
    """Function type names (Python function names included) as a tuple of strings."""
    names = (names,) if isinstance(names, str) else names
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError("{} must be a function type name or a list of them, got {!r}".format(
            what, names)) from None
    for n in names:
        if not isinstance(n, str) or not n:
            raise TypeError("{} must hold function type names, got {!r}".format(what, n))
    return names


def _shape(v):
    return tuple(v.shape)


class ReplaceInputs(GraphPass):
    """The same graph reading ``mapping[v]`` wherever it read the leaf ``v``."""

    name = "identity"

    def __init__(self, mapping=None, copy_value=False):
        mapping = {} if mapping is None else mapping
        if not hasattr(mapping, "items"):
            raise TypeError("inputs must be a dict {{original: replacement}}, got a {}".format(
                type(mapping).__name__))
        self.mapping, self.copy_value = dict(mapping), bool(copy_value)
        for i, (old, new) in enumerate(self.mapping.items()):
            if not (isinstance(old, nn.Variable) and isinstance(new, nn.Variable)):
                raise TypeError("inputs: entry {} maps a {} to a {}; both must be nnabla.Variables"
                                .format(i, type(old).__name__, type(new).__name__))
            if self.copy_value and _shape(old) != _shape(new):
                raise ValueError("inputs: entry {} replaces shape {} by {}; copy_value=True needs "
                                 "equal shapes".format(i, _shape(old), _shape(new)))

    def plan(self, view):
        leaves = set(view.inputs) | set(view.parameters)
        for i, old in enumerate(self.mapping):
            if old not in leaves:
                raise ValueError("{}: inputs entry {} (shape {}) is not a leaf the graph reads".format(
                    self.name, i, _shape(old)))

    def input_map(self, view, b, plan):
        for old, new in self.mapping.items():
            if self.copy_value:  # the user asked for it: the replacement is theirs to fill
                new.d = old.d.copy()
                new.g = old.g.copy()
            b.events.append(Event("leaf {}".format(_shape(old)), "replaced",
                                  "read as a variable of shape {}".format(_shape(new))))
        return dict(self.mapping)


class RemoveFunctions(GraphPass):
    """Drop functions of the listed types (NNabla's or Python functions): output -> input 0."""

    name = "remove_function"

    def __init__(self, type_names=()):
        self.type_names = check_type_names(type_names, "rm_funcs")

    def rebuilds(self, f):
        return f.info.type_name in self.type_names

    def plan(self, view):
        kept = {}
        for f in view.functions:
            if f.info.type_name not in self.type_names:
                continue
            if len(f.outputs) != 1 or not f.inputs:
                kept[f] = "it has {} outputs and {} inputs; only a one-output function with an " \
                          "input can stand aside".format(len(f.outputs), len(f.inputs))
            elif _shape(f.inputs[0]) != _shape(f.outputs[0]):
                kept[f] = "its readers would see shape {} instead of {}".format(
                    _shape(f.inputs[0]), _shape(f.outputs[0]))
        return kept

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name not in self.type_names:
            return None
        if f in plan:
            b.note(f, "kept", plan[f])
            return None
        b.note(f, "removed", "its readers read its input 0")
        return inputs[0]


class StopParameterGradients(GraphPass):
    """Parameters read through ``need_grad=False`` variables sharing their memory."""

    name = "no_grad"

    def plan(self, view):
        return {}  # parameter -> its no-grad stand-in, made once

    def rewrite(self, f, inputs, b, plan):
        new_inputs, stopped = list(inputs), 0
        for i, v in enumerate(f.inputs):
            if v.parent is None and b.view.is_parameter(v) and v.need_grad:
                if v not in plan:
                    plan[v] = b.adopt(v.get_unlinked_variable(need_grad=False), v, "no_grad")
                new_inputs[i], stopped = plan[v], stopped + 1
        if not stopped:
            return None
        b.note(f, "no_grad", "{} parameter(s) read without gradient".format(stopped))
        return b.copy(f, new_inputs)


class UseRunningStatistics(GraphPass):
    """``batch_stat=True`` BNs (plain and fused) -> ``batch_stat=False``."""

    name = "batch_stat_off"

    def rewrite(self, f, inputs, b, plan):
        kind, args = f.info.type_name, f.info.args
        if kind == "SyncBatchNormalization" and args.get("batch_stat", False):
            b.note(f, "kept", "SyncBatchNormalization: rebuilding it needs its communicator")
            return None
        if kind not in _BATCH_NORMS or not args.get("batch_stat", False):
            return None
        if len(f.outputs) != 1:
            b.note(f, "kept", "its batch mean and variance outputs (output_stat=True) exist "
                              "only with batch statistics")
            return None
        b.note(f, "test_mode", "batch_stat=True -> False: normalizes with its running statistics")
        return b.call(kind, inputs, dict(args, batch_stat=False))


def _out_ndim(f):
    return f.outputs[0].ndim - f.info.args.get("base_axis", 1)


class PruneChannels(GraphPass):
    """Zero the output channels whose weights' sum of squares is <= ``threshold``."""

    name = "prune"

    def __init__(self, threshold, functions=prune_math.PRUNABLE):
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
                or not np.isfinite(threshold) or threshold < 0:
            raise ValueError("pruning_threshold must be a finite number >= 0, got {!r}".format(threshold))
        self.threshold = float(threshold)
        self.functions = check_function_names(functions, prune_math.PRUNABLE, "functions_to_prune")

    def plan(self, view):
        masks, kept = {}, {}
        for f in view.functions:
            if f.info.type_name not in self.functions:
                continue
            sources = [parameter_source(v) for v in f.inputs[1:]]
            if any(s is None for s in sources):
                kept[f] = "its weight or bias is computed by the graph, not a parameter"
                continue
            w = sources[0].d.reshape(f.inputs[1].shape)
            mask = prune_math.prune_mask(f.info.type_name, w, self.threshold, f.info.args, _out_ndim(f))
            if mask.all():
                kept[f] = "no output channel has a squared norm <= {:g}".format(self.threshold)
            else:
                masks[f] = mask
        return {"masks": masks, "kept": kept}

    def rewrite(self, f, inputs, b, plan):
        if f in plan["kept"]:
            b.note(f, "kept", plan["kept"][f])
        if f not in plan["masks"]:
            return None
        mask, kind = plan["masks"][f], f.info.type_name
        w_var = parameter_source(f.inputs[1])
        b_var = parameter_source(f.inputs[2]) if len(f.inputs) > 2 else None
        bias = None if b_var is None else b_var.d.reshape(f.inputs[2].shape)
        w, bias = prune_math.pruned(kind, w_var.d.reshape(f.inputs[1].shape), bias, mask, f.info.args)
        new_inputs = [inputs[0], b.parameter(w_var, w, "pruned")]
        if bias is not None:
            new_inputs.append(b.parameter(b_var, bias, "pruned"))
        b.note(f, "pruned", "{} of {} output channels zeroed".format(int((mask == 0).sum()), mask.size))
        return b.call(kind, new_inputs, f.info.args)


def _bias_shape(f):
    """The bias shape of inner-product layer ``f``, read from its output."""
    out, args = f.outputs[0].shape, f.info.args
    base = args.get("base_axis", 1)
    if f.info.type_name == "Affine":
        return tuple(out[base:])
    return (out[-1] if args.get("channel_last", False) else out[base],)


class AddZeroBias(GraphPass):
    """A zero bias for bias-less inner-product layers reading from or feeding a BN."""

    name = "add_bias"

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name not in prune_math.PRUNABLE or len(f.inputs) != 2:
            return None
        producer = b.view.producer(f.inputs[0])
        readers = [g for g, _ in b.view.consumers(f.outputs[0])]
        if not any(g is not None and g.info.type_name == "BatchNormalization"
                   for g in [producer] + readers):
            return None
        zeros = b.parameter(f.inputs[1], np.zeros(_bias_shape(f), np.float32), "bias")
        b.note(f, "bias_added", "a zero bias (next to a BatchNormalization)")
        return b.call(f.info.type_name, list(inputs) + [zeros], f.info.args)
