"""Batch-normalization passes: fold BN into a neighbouring linear layer, or linearize it.

An inference BN is ``c0 * x + c1`` per channel (see :mod:`converters.bn_math`).

- :class:`FoldBatchNorm` folds it into the preceding Convolution / Deconvolution /
  DepthwiseConvolution / DepthwiseDeconvolution / Affine (``W' = c0 W``, ``b' = c0 b + c1``),
  or with ``opposite=True`` into the following Convolution / DepthwiseConvolution / Affine
  (``W' = W c0``, ``b' = b + W c1``) where that is exact.
- :class:`LinearizeBatchNorm` replaces it by one scale-and-shift op: a 1x1
  DepthwiseConvolution with weight ``c0`` and bias ``c1``. Chosen by measurement
  (benchmarks/bench_bn.py): on CPU it runs about 2x faster than a BN on large maps and on par
  on small ones, while NNabla's broadcast Mul2 + Add2 is about 10x slower than a BN.

Guards come first: a BN is left alone, with the reason recorded, when it runs on batch
statistics, when its statistics are computed by the graph, when the layer's output also
goes elsewhere (folding would change the other readers), when the layer's weight is not a
parameter, when the BN axis is not the layer's channel axis, or when zero padding would meet
a shifted input. The BN axis is read from the BN's ``axes``, never assumed. A BN without an
inference form (training mode, statistics computed by the graph, running variance + eps not
positive) also raises a :class:`~converters.rewrite.ConversionWarning`; ``strict=True`` turns
any BN that would stay into a ValueError naming it, before anything is built.
"""
from collections import namedtuple

import warnings

import numpy as np

from .bn_math import CONSUMER_KINDS, PRODUCER_KINDS, bn_scale_shift, fold_into_consumer, \
    fold_into_producer
from .graph_view import parameter_source
from .rewrite import ConversionWarning, GraphPass

__all__ = ["FoldBatchNorm", "LinearizeBatchNorm", "BatchNormInfo", "read_batch_norm",
           "scale_shift_op"]

BatchNormInfo = namedtuple("BatchNormInfo", "x axes eps batch_stat beta gamma mean var")


def read_batch_norm(f):
    """The inputs and settings of a BatchNormalization function, by role."""
    args = f.info.args
    inputs = list(f.inputs)
    x = inputs.pop(0)
    beta = None if args.get("no_bias", False) else inputs.pop(0)
    gamma = None if args.get("no_scale", False) else inputs.pop(0)
    mean, var = inputs
    return BatchNormInfo(x, sorted(a % x.ndim for a in args["axes"]), args["eps"],
                         args["batch_stat"], beta, gamma, mean, var)


def _bn_reason(view, bn):
    """Why no inference form of this BN exists, or None."""
    if bn.batch_stat:
        return ("batch_stat=True (training mode): it normalizes with batch statistics, so "
                "folding the running statistics would change its output")
    for role in ("beta", "gamma", "mean", "var"):
        v = getattr(bn, role)
        if v is not None and v.parent is not None:
            return "its {} is computed by the graph, not a parameter".format(role)
    low = float(np.min(bn.var.d)) + bn.eps
    if not low > 0:  # NaN too: the original computes NaN/inf, which no scale can reproduce
        return "its running variance + eps is not positive (min {:g}): no finite scale exists".format(low)
    return None


_FUSED = ("FusedBatchNormalization: BN, Add2 and activation in one function, which this pass "
          "does not split")


def _settle(name, view, kept, no_inference_form, strict):
    """Refuse (``strict``) or warn about BNs that stay. Only BNs without an inference form
    (training mode, computed or invalid statistics) warn: a BN kept for its neighbourhood
    (a forked output...) is the pass working as intended and is listed in the events."""
    if strict and kept:
        raise ValueError("{} (strict=True): {} BatchNormalization function(s) cannot be "
                         "converted: {}".format(name, len(kept), _grouped(view, kept)))
    if no_inference_form:
        training = any(r.startswith("batch_stat=True") for r in no_inference_form.values())
        warnings.warn("{} kept {} BatchNormalization function(s) that have no inference form: {}{}; "
                      "strict=True makes this an error".format(
                          name, len(no_inference_form), _grouped(view, no_inference_form),
                          "; for inference build the graph with batch_stat=False" if training else ""),
                      ConversionWarning)


def _grouped(view, reasons, limit=3):
    """``{function: reason}`` as text, functions grouped by reason (at most ``limit`` named)."""
    by_reason = {}
    for f, reason in reasons.items():
        by_reason.setdefault(reason, []).append(view.describe(f))
    return "; ".join("{}{} ({})".format(", ".join(fs[:limit]), ", ..." if len(fs) > limit else "", r)
                     for r, fs in by_reason.items())


def _scale_shift(bn):
    """``(c0, c1)`` shaped like the BN's statistics (1 except on its axes)."""
    def data(v):
        return None if v is None else v.d
    return bn_scale_shift(bn.mean.d, bn.var.d, bn.eps, data(bn.gamma), data(bn.beta))


def _channel_axes(f, ndim):
    """Axes of ``f``'s data (input or output, rank ``ndim``) that hold its channels."""
    args = f.info.args
    if f.info.type_name == "Affine":
        return None  # any axis after base_axis
    if args.get("channel_last", False):
        return [ndim - 1]
    return [args.get("base_axis", 1)]


def _axes_reason(f, bn, view):
    axes = _channel_axes(f, bn.x.ndim)
    if axes is None:
        base = f.info.args.get("base_axis", 1)
        if bn.axes[0] >= base:
            return None
        return "BN axes {} reach before base_axis {} of {}".format(
            bn.axes, base, view.describe(f))
    if bn.axes != axes:
        return "BN axes {} are not the channel axis {} of {}".format(
            bn.axes, axes, view.describe(f))
    return None


def _weights_reason(f, view):
    for v, role in zip(f.inputs[1:], ("weight", "bias")):
        if parameter_source(v) is None:
            return "the {} of {} is computed by the graph, not a parameter".format(
                role, view.describe(f))
    return None


def _same(a, b):
    """Whether two wrappers hold the same NNabla function (``!=`` is broken on Functions)."""
    return a is not None and a == b


def _users(view, v):
    names = [view.describe(g) for g, _ in view.consumers(v)]
    return ", ".join(names + (["a graph output"] if view.is_output(v) else []))


def _trailing(c, ndim_from):
    """``c`` (shaped like the BN statistics) without its leading batch dims."""
    return c.reshape(c.shape[ndim_from:])


class FoldBatchNorm(GraphPass):
    """Fold inference BN into the preceding layer (or the following one: ``opposite``).

    ``channel_last`` is accepted for the seed API; the axis always comes from the BN.
    A BN that stays is noted with its reason; one without an inference form (training
    mode...) also raises a :class:`ConversionWarning`, and with ``strict=True`` any BN that
    would stay makes the conversion fail instead (a ValueError naming them).
    """

    name = "bn_fold"

    def __init__(self, opposite=False, channel_last=False, strict=False):
        self.opposite, self.channel_last = bool(opposite), bool(channel_last)
        self.strict = bool(strict)

    def plan(self, view):
        plan = {"layer": {}, "folded": {}, "kept": {}}  # layer -> bn; bn -> layer; bn -> reason
        no_inference_form = {}
        for f in view.functions:
            if f.info.type_name == "FusedBatchNormalization":
                plan["kept"][f] = _FUSED
            if f.info.type_name != "BatchNormalization":
                continue
            bn = read_batch_norm(f)
            reason = _bn_reason(view, bn)
            if reason is not None:
                no_inference_form[f] = reason
            else:
                layer, reason = (self._following if self.opposite else self._preceding)(view, f, bn)
            if reason is None:
                plan["layer"][layer] = (f, bn)
                plan["folded"][f] = layer
            else:
                plan["kept"][f] = reason
        _settle(self.name, view, plan["kept"], no_inference_form, self.strict)
        return plan

    @staticmethod
    def _preceding(view, f, bn):
        layer = view.producer(bn.x)
        if layer is None:
            return None, "its input is a graph input: there is no layer to fold it into"
        kind = layer.info.type_name
        if kind not in PRODUCER_KINDS:
            return None, "its input comes from {}, which has no weights to fold into".format(
                view.describe(layer))
        if not _same(view.sole_consumer(bn.x), f):
            return None, "the output of {} is also read by {}: folding would change it for " \
                         "them".format(view.describe(layer), _users(view, bn.x))
        return layer, _weights_reason(layer, view) or _axes_reason(layer, bn, view)

    @staticmethod
    def _following(view, f, bn):
        y = f.outputs[0]
        layer = view.sole_consumer(y)
        if layer is None:
            return None, "its output is read by {}: it cannot vanish into one of them".format(
                _users(view, y) or "nothing")
        kind = layer.info.type_name
        if kind not in CONSUMER_KINDS or view.consumers(y)[0][1] != 0:  # data, not weight
            return None, "its output feeds {}, which cannot absorb it".format(view.describe(layer))
        reason = _weights_reason(layer, view) or _axes_reason(layer, bn, view)
        if reason is None and any(layer.info.args.get("pad", ())):
            if np.any(_scale_shift(bn)[1] != 0):
                reason = ("{} zero-pads its input: the shift of a folded BN would be missing "
                          "at the border".format(view.describe(layer)))
        return layer, reason

    def rewrite(self, f, inputs, b, plan):
        if f in plan["kept"]:
            b.note(f, "kept", plan["kept"][f])
            return None
        if f in plan["folded"]:
            layer = plan["folded"][f]
            b.note(f, "folded", "into {}".format(b.view.describe(layer)))
            return inputs[0]  # the BN vanishes; its input already is the folded layer
        if f in plan["layer"]:
            return self._fold(f, inputs, b, *plan["layer"][f])
        return None

    def _fold(self, layer, inputs, b, bn_f, bn):
        kind, args = layer.info.type_name, layer.info.args
        # weight and bias are parameters, possibly seen through a Reshape (see the guard)
        shape = layer.inputs[1].shape
        w_var = parameter_source(layer.inputs[1])
        b_var = parameter_source(layer.inputs[2]) if len(layer.inputs) > 2 else None
        w_data = w_var.d.reshape(shape)
        c0, c1 = _scale_shift(bn)
        old_b = None if b_var is None else b_var.d.reshape(layer.inputs[2].shape)
        # a folded value trains when anything it is made of does (a frozen conv under a
        # trainable BN: gamma and beta live on in W' and b')
        bn_trains = any(v is not None and v.need_grad for v in (bn.beta, bn.gamma, bn.mean, bn.var))
        if self.opposite:
            c0, c1 = self._layout(kind, args, c0, c1, full=bn.x.shape)
            w, bias = fold_into_consumer(kind, w_data, old_b, c0, c1, args)
            new_w = b.parameter(w_var, w, "bn_folded", need_grad=w_var.need_grad or bn_trains)
        else:
            c0, c1 = self._layout(kind, args, c0, c1)
            # Written straight into the new parameter: no temporary copy of the weight.
            new_w, buffer = b.parameter_buffer(w_var, shape, "bn_folded", need_grad=w_var.need_grad or bn_trains)
            _, bias = fold_into_producer(kind, w_data, old_b, c0, c1, args, out=buffer)
        like = b_var if b_var is not None else w_var
        new_b = b.parameter(like, bias, "bn_folded" if b_var is not None else "bn_folded_bias",
                            need_grad=like.need_grad or bn_trains)
        return b.call(kind, [inputs[0], new_w, new_b], args)[0]

    @staticmethod
    def _layout(kind, args, c0, c1, full=None):
        """c0/c1 as the math wants them: a channel vector, or Affine's trailing dims."""
        if kind != "Affine":
            return c0.reshape(-1), c1.reshape(-1)
        base = args.get("base_axis", 1)
        c0, c1 = _trailing(c0, base), _trailing(c1, base)
        if full is not None:  # reading side: Affine flattens all of x's trailing dims
            shape = tuple(full[base:])
            c0, c1 = np.broadcast_to(c0, shape), np.broadcast_to(c1, shape)
        return c0, c1


class LinearizeBatchNorm(GraphPass):
    """Replace each inference BN by one per-channel ``c0 * x + c1`` op.

    ``channel_last`` is accepted for the seed API; the axis always comes from the BN.
    BNs without an inference form stay as :class:`FoldBatchNorm` describes (warning, or an
    error with ``strict=True``).
    """

    name = "bn_linear"

    def __init__(self, channel_last=False, strict=False):
        self.channel_last, self.strict = bool(channel_last), bool(strict)

    def plan(self, view):
        kept, no_inference_form = {}, {}
        for f in view.functions:
            if f.info.type_name == "FusedBatchNormalization":
                kept[f] = _FUSED
            elif f.info.type_name == "BatchNormalization":
                reason = _bn_reason(view, read_batch_norm(f))
                if reason is not None:
                    kept[f] = no_inference_form[f] = reason
        _settle(self.name, view, kept, no_inference_form, self.strict)
        return kept

    def rewrite(self, f, inputs, b, plan):
        if f in plan:
            b.note(f, "kept", plan[f])
            return None
        if f.info.type_name != "BatchNormalization":
            return None
        bn = read_batch_norm(f)
        c0, c1 = _scale_shift(bn)
        like = bn.gamma if bn.gamma is not None else bn.mean
        out, form = scale_shift_op(b, inputs[0], bn.axes, c0, c1, like)
        b.note(f, "linearized", form)
        return out


def scale_shift_op(b, x, axes, c0, c1, like):
    """Build ``c0 * x + c1`` (c0/c1 shaped like BN statistics over ``axes``) in the new graph.

    A 1x1 DepthwiseConvolution with weight c0 and bias c1 where NNabla has one (1 or 2
    trailing dims after one channel axis; otherwise reshaped to that, which costs no copy);
    a BN with mean 0, var 1, eps 0 when the axes are not contiguous.
    """
    shape = x.shape
    contiguous = axes == list(range(axes[0], axes[-1] + 1))
    if not contiguous or axes[0] == 0:
        # (x - 0) / sqrt(1 + 0) * c0 + c1: exact, and as fast as the original BN.
        zeros, ones = np.zeros_like(c0), np.ones_like(c0)
        params = [b.parameter(like, c1, "linear_shift"), b.parameter(like, c0, "linear_scale"),
                  b.parameter(like, zeros, "linear_mean", need_grad=False),
                  b.parameter(like, ones, "linear_var", need_grad=False)]
        out = b.call("BatchNormalization", [x] + params, dict(
            axes=axes, decay_rate=0.9, eps=0.0, batch_stat=False, no_scale=False, no_bias=False))
        return out[0], "BatchNormalization(mean=0, var=1, eps=0)"
    first, last = axes[0], axes[-1]
    channels = int(np.prod([shape[a] for a in axes]))
    rest = shape[last + 1:]
    direct = len(axes) == 1 and len(rest) in (1, 2)
    spatial = len(rest) if direct else 1
    weight = b.parameter(like, c0.reshape((channels,) + (1,) * spatial), "linear_scale")
    bias = b.parameter(like, c1.reshape(channels), "linear_shift")
    h = x
    if not direct:
        h = b.call("Reshape", [x], dict(
            shape=list(shape[:first]) + [channels, int(np.prod(rest))], inplace=True))[0]
    h = b.call("DepthwiseConvolution", [h, weight, bias], dict(
        base_axis=first, pad=[0] * spatial, stride=[1] * spatial, dilation=[1] * spatial,
        multiplier=1))[0]
    if not direct:
        h = b.call("Reshape", [h], dict(shape=list(shape), inplace=True))[0]
    return h, "1x1 DepthwiseConvolution(weight=c0, bias=c1)"
