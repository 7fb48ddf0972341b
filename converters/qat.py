"""Quantization-aware training, NNabla's flow: float graph -> recording graph -> QDQ graph.

:class:`RecordForQAT` inserts identity recorders (the config's ``recorder_activation`` /
``recorder_weight`` of ``nnabla.utils.qnn``) before the inputs of the recorded functions, as
NNabla's ``QuantizeNonQNNToRecordingModifier`` chooses them:

- every function but BatchNormalization, or only ``config.record_layers`` when given; the
  first function of a ``skip_inputs_layers`` type (no such type upstream) and the last of a
  ``skip_outputs_layers`` type (none downstream) are not recorded;
- inputs ``0 .. k-1`` are activations (``k`` = 1, 2 for binary arithmetic, all for
  Concatenate / Stack), the rest (weights, biases) get weight recorders;
- one recorder per tensor, read by its recorded readers (other readers read the tensor);
  ``RecorderPosition.BOTH`` also records each recorded function's outputs, for every reader;
- the operands of Add2 / Concatenate share one recorder state: one scale for all of them.

Training forwards (``training=True``) update the recorders' state, which belongs to the
converted graph (``last_result.new_parameters``, named ``Convolution-3/M-x0`` as NNabla names
them), not to NNabla's global scope.

:class:`RecordingToQDQ` (``QuantizeRecordingToTrainingModifier``, SIM_QNN) converts that
recording graph: each recorder becomes ``DequantizeLinear(QuantizeLinear(x))`` with the scale and
zero point of its recorded range (:mod:`.qat_math`); the bias of an inner-product layer whose
input and weight are quantized goes on the ``s_x s_w`` grid instead (int32, simulated), or
stays float with ``config.skip_bias``. A recorder with an empty range is dropped (float).
NNabla's flow removes the recorders first and finds their state again by name in the global
scope; here the state is read from the recorders themselves, so the recording graph is
converted directly.
"""
import contextlib
import warnings
from collections import OrderedDict

import nnabla as nn
import numpy as np

from . import qat_math
from .qdq import quantize_dequantize, simulated_quantize_dequantize
from .rewrite import ConversionWarning, GraphPass

__all__ = ["RecordForQAT", "RecordingToQDQ", "default_config", "recorded_functions"]

_BINARY = ("Add2", "Sub2", "Mul2", "Div2", "Pow2")
_SHARED = ("Add2", "Concatenate")
_INNER_PRODUCT = ("Affine", "Convolution", "Deconvolution", "DepthwiseConvolution",
                  "DepthwiseDeconvolution")
_CONFIG_KEYS = ("record_layers", "recorder_position", "skip_inputs_layers", "skip_outputs_layers",
                "recorder_activation", "recorder_weight", "round_mode", "narrow_range", "dtype",
                "pow2", "skip_bias", "precision_mode", "channel_last")


def default_config(config, owner):
    """``config`` checked for the QATConfig attributes used here (None: a default QATConfig)."""
    if config is None:
        from nnabla.utils.qnn import QATConfig  # imported on use: it loads NNabla's converters
        config = QATConfig()
    missing = [k for k in _CONFIG_KEYS if not hasattr(config, k)]
    if missing:
        raise TypeError("{}: config has no {}; give an nnabla.utils.qnn.QATConfig".format(
            owner, ", ".join(missing)))
    return config


def _check_ranks(functions_ranks, owner):
    if functions_ranks is not None and not hasattr(functions_ranks, "get"):
        raise TypeError("{}: functions_ranks must be a {{function: rank}} mapping, got a {}".format(
            owner, type(functions_ranks).__name__))
    return functions_ranks or {}


def _activation_inputs(f):
    kind = f.info.type_name
    if kind in ("Concatenate", "Stack"):
        return len(f.inputs)
    return 2 if kind in _BINARY else 1


def recorded_functions(view, config):
    """The functions of ``view`` whose inputs a recording conversion records."""
    skip_in, skip_out = set(config.skip_inputs_layers or ()), set(config.skip_outputs_layers or ())
    upstream, downstream = {}, {}
    for f in view.functions:  # types of all functions before / after f, in O(N * types)
        seen = set()
        for v in f.inputs:
            p = view.producer(v)
            if p is not None:
                seen |= upstream[p] | {p.info.type_name}
        upstream[f] = seen
    for f in reversed(view.functions):
        seen = set()
        for o in f.outputs:
            for g, _ in view.consumers(o):
                seen |= downstream[g] | {g.info.type_name}
        downstream[f] = seen
    chosen = []
    for f in view.functions:
        kind = f.info.type_name
        if kind == "BatchNormalization" or (config.record_layers and kind not in config.record_layers):
            continue
        if kind in skip_in and not upstream[f] & skip_in:
            continue  # the first layer of its kind: the network's input layer
        if kind in skip_out and not downstream[f] & skip_out:
            continue  # the last: the output layer
        chosen.append(f)
    return chosen


class _Groups:
    """Union-find over tensors whose recorders share one state (Add2 / Concatenate operands)."""

    def __init__(self):
        self.parent = {}

    def find(self, v):
        while not self.parent.get(v, v) == v:  # == : wrappers of one variable differ
            v = self.parent[v]
        return v

    def union(self, vs):
        roots = [self.find(v) for v in vs]
        for r in roots[1:]:
            if not r == roots[0]:
                self.parent[r] = roots[0]


class RecordForQAT(GraphPass):
    name = "qat_recording"

    def __init__(self, functions_ranks, config=None, training=True):
        self.ranks = _check_ranks(functions_ranks, "QuantizeNonQNNToRecordingModifier")
        self.config = default_config(config, "QuantizeNonQNNToRecordingModifier")
        self.training = bool(training)
        self.both = getattr(self.config.recorder_position, "name", None) == "BOTH"

    def _scope(self, f):
        return "{}-{}".format(f.info.type_name, self.ranks.get(f, -1))

    def plan(self, view):
        chosen = recorded_functions(view, self.config)
        groups, names = _Groups(), {}
        for f in chosen:
            k = _activation_inputs(f)
            for i, v in enumerate(f.inputs):
                names.setdefault(v, (self._scope(f), "x{}".format(i) if i < k else "w{}".format(i - k),
                                     i < k))
            if f.info.type_name in _SHARED:
                groups.union([v for v in f.inputs[:k]])
        return {"chosen": set(chosen), "groups": groups, "names": names, "made": {}, "state": {}}

    def _recorder(self, b, plan, old, new, label=None):
        """The recorder output standing for ``old`` (made once), reading ``new``."""
        made = plan["made"]
        if old in made:
            return made[old]
        root = plan["groups"].find(old)
        scope, local, activation = plan["names"].get(root, label)
        callback = (self.config.recorder_activation if activation else self.config.recorder_weight)()
        axes = [new.ndim - 1] if self.config.channel_last else [1]
        context = nn.context_scope(b.context) if b.context is not None else contextlib.nullcontext()
        # The callback creates its state in the current parameter scope: a private one per
        # group here, so recorders share a state exactly when their tensors are grouped.
        fresh = root not in plan["state"]
        state = plan["state"].setdefault(root, OrderedDict())
        # no_grad: recorder state is measured, not trained
        with nn.auto_forward(False), nn.no_grad(), context, nn.parameter_scope("", state):
            made[old] = callback(new, axes=axes, training=self.training, name=local)
            if fresh:  # list the state the recorder reads, under the names it was created with
                for key, var in zip(nn.get_parameters(grad_only=False), made[old].parent.inputs[1:]):
                    b.adopt(var, scope, key)
        return made[old]

    def rewrite(self, f, inputs, b, plan):
        if f not in plan["chosen"]:
            return None
        new_inputs = [self._recorder(b, plan, v, new) for v, new in zip(f.inputs, inputs)]
        b.note(f, "recorded", "{} input(s)".format(len(new_inputs)))
        outs = b.copy(f, new_inputs)
        if not self.both:
            return outs
        return [self._recorder(b, plan, o, new, (self._scope(f), "y{}".format(k), True))
                for k, (o, new) in enumerate(zip(f.outputs, outs))]


class RecordingToQDQ(GraphPass):
    name = "qat_training"

    def __init__(self, functions_ranks=None, config=None):
        _check_ranks(functions_ranks, "QuantizeRecordingToTrainingModifier")  # state is in the graph
        self.config = default_config(config, "QuantizeRecordingToTrainingModifier")
        mode = getattr(self.config.precision_mode, "name", self.config.precision_mode)
        if mode != "SIM_QNN":
            raise ValueError("QuantizeRecordingToTrainingModifier: config.precision_mode {} is not "
                             "implemented (NNabla has SIM_QNN only)".format(mode))

    def rebuilds(self, f):
        return f.info.type_name in qat_math.RECORDER_KINDS

    def _spec(self, f):
        cfg = self.config
        kind = qat_math.RECORDER_KINDS[f.info.type_name]
        return qat_math.recorded_scale(kind, [v.d for v in f.inputs[1:]], 8 * np.dtype(cfg.dtype).itemsize,
                                       cfg.narrow_range, bool(getattr(cfg, "zero_point", False)), cfg.pow2,
                                       np.issubdtype(cfg.dtype, np.signedinteger))

    def plan(self, view):
        specs = {f: self._spec(f) for f in view.functions if self.rebuilds(f)}
        if not specs:
            warnings.warn("QuantizeRecordingToTrainingModifier found no recorder in the graph: give "
                          "it the recording graph itself (recorders in), not one they were removed "
                          "from", ConversionWarning)
        recorder_of = {f.outputs[0]: f for f in specs}
        biases = {}
        for g in view.functions:
            if g.info.type_name not in _INNER_PRODUCT or len(g.inputs) < 3:
                continue
            rx, rw, rb = (recorder_of.get(v) for v in g.inputs[:3])
            if rb is not None and rb not in biases and rx is not None and rw is not None \
                    and specs[rx] is not None and specs[rw] is not None:
                biases[rb] = "float" if self.config.skip_bias else qat_math.bias_scale(
                    specs[rx][0], specs[rw][0])
        return {"specs": specs, "biases": biases}

    def rewrite(self, f, inputs, b, plan):
        if f not in plan["specs"]:
            return None
        x, cfg = inputs[0], self.config
        bias, spec = plan["biases"].get(f), plan["specs"][f]
        if bias is not None:
            if isinstance(bias, str):
                b.note(f, "kept", "bias left float (config.skip_bias)")
                return x
            s = b.parameter(f.inputs[0], bias.reshape((1,) * x.ndim), "bias_scale", need_grad=False)
            b.note(f, "quantized", "bias on the s_x s_w grid (int32)")
            return simulated_quantize_dequantize(b, x, s)
        if spec is None:
            b.note(f, "kept", "its recorder saw an empty range: left float")
            return x
        s = b.parameter(f.inputs[0], spec[0], "scale", need_grad=False)
        z = b.parameter(f.inputs[0], spec[1], "zero_point", need_grad=False)
        b.note(f, "quantized", "scale {:.3g}".format(float(spec[0].reshape(-1)[0])))
        return quantize_dequantize(b, x, s, z, cfg.round_mode, cfg.narrow_range, cfg.dtype)
