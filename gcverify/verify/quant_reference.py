"""The verifier's own quantizers: numpy code written from a declared spec
(:class:`~gcverify.core.quantization.FixedPointSpec`, :class:`~gcverify.core.quantization.LinearQuantSpec`),
independent of the converters' code, and the reference forward they give.

The reference forward runs a fresh faithful copy of the original with the spec applied by
this module: quantized weights and biases written into the copy's parameters, and NNabla
forward hooks that quantize activation outputs in place (fixed point) or fake-quantize the
inputs of inner-product layers for the duration of that layer (QDQ: other readers of the
same tensor see it unquantized, as in a QDQ graph). A correct quantizing conversion computes
the same numbers, up to float32 rounding.
"""
import nnabla as nn
import numpy as np

from converters.fast_rebuild import fast_nnabla_imports
from converters.graph_view import GraphView, parameter_source

from ..core.quantization import FixedPointSpec
from ..core.running import feed

__all__ = ["round_half_away", "power_of_two_step", "fixed_point", "fixed_point_levels", "output_axes",
           "qdq", "qdq_params", "reference_weights", "record_ranges", "reference_forward"]


def round_half_away(v):
    """Round to the nearest integer, halves away from zero (exactly, in float64)."""
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def fixed_point_levels(bits, signed=True):
    return 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1


def power_of_two_step(max_abs, bits, signed=True):
    """The smallest power of two ``d`` with ``levels * d >= max_abs`` (1 for a zero range),
    from the binary exponent of ``max_abs / levels`` (``frexp``: ``m 2^e``, ``1/2 <= m < 1``)."""
    ratio = np.asarray(max_abs, dtype=np.float64) / fixed_point_levels(bits, signed)
    mantissa, exponent = np.frexp(np.where(ratio > 0, ratio, 1.0))
    step = np.ldexp(1.0, np.where(mantissa == 0.5, exponent - 1, exponent))  # 2^e >= ratio > 2^(e-1)
    return np.where(ratio > 0, step, 1.0)


def fixed_point(x, bits, step, signed=True):
    """``round_half_away(x / step) * step`` clipped to the ``bits``-bit range (float32)."""
    levels = fixed_point_levels(bits, signed)
    q = np.clip(round_half_away(np.asarray(x, np.float64) / step), -levels if signed else 0, levels)
    return (q * step).astype(np.float32)


def output_axes(f, ndim):
    """Axes of ``f``'s weight that index its output channels (one step per channel)."""
    kind, cl = f.info.type_name, f.info.args.get("channel_last", False)
    if kind == "Affine":
        return tuple(range(1, ndim))  # (inputs, *outputs)
    if kind == "Deconvolution":
        return (ndim - 1,) if cl else (1,)  # (inputs, outputs/group, *k)
    return (0,)


def _channel_max(w, axes):
    others = tuple(a for a in range(w.ndim) if a not in axes)
    return np.max(np.abs(w.astype(np.float64)), axis=others, keepdims=True) if others else np.abs(w)



def qdq_params(lo, hi, bits, symmetric):
    """``(scale, zero point, qmin, qmax)`` of a range ``[lo, hi]`` (float32 scale)."""
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)
    top = 2 ** (bits - 1) - 1
    if symmetric:
        qmin, qmax = -top, top
        scale = np.maximum(-lo, hi) / qmax
    else:
        qmin, qmax = -top - 1, top
        scale = (hi - lo) / (qmax - qmin)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    zero = np.zeros_like(scale) if symmetric else np.clip(round_half_away(qmin - lo / scale), qmin, qmax)
    return scale, np.asarray(zero, np.float32), qmin, qmax


def qdq(x, scale, zero, qmin, qmax):
    """Quantize and dequantize ``x`` (the quotient in float32, as a runtime computes it)."""
    q = np.clip(round_half_away(np.asarray(x, np.float32) / scale) + zero, qmin, qmax)
    return ((q - zero) * scale).astype(np.float32)


def reference_weights(f, spec):
    """``{leaf: quantized values}`` for the weight (and bias) of inner-product ``f`` per ``spec``;
    a weight the graph computes is left out (an automatic step needs its values)."""
    out = {}
    w = parameter_source(f.inputs[1])
    if w is None:
        return out
    values = w.d.reshape(f.inputs[1].shape)  # a flat parameter read through a Reshape: as the layer sees it
    if isinstance(spec, FixedPointSpec):
        axes = output_axes(f, values.ndim) if spec.per_channel else None
        top = _channel_max(values, axes) if axes else np.max(np.abs(values.astype(np.float64)))
        step = spec.weight_delta or power_of_two_step(top, spec.weight_bits)
        out[w] = fixed_point(values, spec.weight_bits, step).reshape(w.shape)
        b = parameter_source(f.inputs[2]) if spec.quantize_bias and len(f.inputs) > 2 else None
        if b is not None:
            bits = spec.bias_bits or spec.weight_bits
            step = spec.bias_delta or power_of_two_step(np.max(np.abs(b.d.astype(np.float64))), bits)
            out[b] = fixed_point(b.d, bits, step)
        return out
    axes = output_axes(f, values.ndim) if spec.per_channel else None
    if spec.symmetric:
        top = _channel_max(values, axes) if axes else np.max(np.abs(values.astype(np.float64)))
        lo, hi = -top, top
    else:
        others = tuple(a for a in range(values.ndim) if a not in axes) if axes else None
        lo = np.min(values, axis=others, keepdims=axes is not None)
        hi = np.max(values, axis=others, keepdims=axes is not None)
    out[w] = qdq(values, *qdq_params(lo, hi, spec.bits, spec.symmetric)).reshape(w.shape)
    return out


def record_ranges(model, functions):
    """``{position: (min, max)}`` of the data input of each function of these types, over one
    forward of ``model`` (a faithful copy) on its data: the calibration a QDQ spec declares."""
    view = GraphView(model.outputs, model.params)
    wanted = {f: i for i, f in enumerate(view.functions) if f.info.type_name in functions}
    ranges = {}

    def record(f):
        if f in wanted:
            d = f.inputs[0].d
            ranges[wanted[f]] = (float(d.min()), float(d.max()))
    with fast_nnabla_imports():
        feed(model.inputs, model.input_data)
        nn.forward_all(list(model.outputs), function_pre_hook=record)
    return ranges


def reference_forward(model, spec, ranges=None, data=None):
    """The outputs of ``model`` (a fresh faithful copy, changed here) with ``spec`` applied
    by this module, on ``data`` (default: the model's); ``ranges``: :func:`record_ranges` of
    the same graph, for QDQ."""
    view = GraphView(model.outputs, model.params)
    fixed = isinstance(spec, FixedPointSpec)
    weights = {}
    inner = [(i, f) for i, f in enumerate(view.functions)
             if f.info.type_name in (spec.weight_functions if fixed else spec.functions)]
    if not fixed or spec.weight_bits:
        for _, f in inner:
            for leaf, values in reference_weights(f, spec).items():
                weights.setdefault(leaf, values)  # a shared weight is quantized once
    for leaf, values in weights.items():
        leaf.d = values
    acts = set(spec.activation_functions) if fixed and spec.activation_bits else set()
    position = {f: i for i, f in inner}
    held = {}

    def before(f):
        if not fixed and f in position and ranges and position[f] in ranges:
            x = f.inputs[0]
            held[f] = x.d.copy()
            x.d = qdq(held[f], *qdq_params(*ranges[position[f]], spec.bits, spec.symmetric))
        elif fixed and f in position and spec.weight_bits and spec.weight_delta and parameter_source(f.inputs[1]) is None:
            w = f.inputs[1]  # computed by the graph: on a given step it is quantized as it flows in
            held[f] = (w, w.d.copy())
            w.d = fixed_point(held[f][1], spec.weight_bits, spec.weight_delta)

    def after(f):
        if f in held:
            kept = held.pop(f)
            if isinstance(kept, tuple):
                kept[0].d = kept[1]
            else:
                f.inputs[0].d = kept
        if f.info.type_name in acts:
            signed = f.info.type_name not in spec.unsigned
            for o in f.outputs:
                o.d = fixed_point(o.d, spec.activation_bits, spec.activation_delta, signed)
    with fast_nnabla_imports():
        feed(model.inputs, model.input_data if data is None else data)
        nn.forward_all(list(model.outputs), function_pre_hook=before, function_post_hook=after)
    return [o.d.copy() for o in model.outputs]
