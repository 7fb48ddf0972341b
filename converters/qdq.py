"""Quantize/dequantize insertion before inner-product layers (ONNX's QDQ form).

For ``y = Conv(x, W, b)`` (likewise Affine, Deconvolution, Depthwise*)::

    y = Conv(DQ(Q(x; s_x, z_x)), DQ(Q(W; s_W, z_W)), b)
    Q(v; s, z) = clip(round(v / s) + z, qmin, qmax),   DQ(q; s, z) = (q - z) * s

``s_x, z_x`` come from recorded activation ranges (one per tensor), ``s_W, z_W`` from the
weight values (one per tensor or one per output channel); both by ``quant_math.linear_scale``
(symmetric: z = 0 and the narrow range [-127, 127] for int8; asymmetric: [-128, 127] with an
integer zero point). Biases stay float (a runtime folds them into int32 with s_x * s_W).

With ``n = 8`` the pair is NNabla's ``QuantizeLinear``/``DequantizeLinear`` (int8). Those only
know 8-bit types, so other widths are simulated with the same algebra from elementary
functions (Div2, Round, Add2, MaximumScalar, MinimumScalar, Sub2, Mul2); for ``n = 8`` both
forms give bit-identical results (tested).
"""
import numpy as np
from nnabla import dtypes

from . import quant_math
from .fixed_point import WEIGHT_OUTPUT_AXES, check_bits, check_function_names
from .graph_view import parameter_source
from .rewrite import GraphPass

__all__ = ["QuantizeDequantize", "quantize_dequantize", "simulated_quantize_dequantize"]


def quantize_dequantize(b, v, s, z, round_mode, narrow_range, dtype=np.int8):
    """``DequantizeLinear(QuantizeLinear(v; s, z))`` in the new graph (8-bit ``dtype``)."""
    q = b.call("QuantizeLinear", [v, s, z], dict(
        round_mode=round_mode, narrow_range=bool(narrow_range), dtype=dtypes.np_dtpye_to_int[dtype]))
    return b.call("DequantizeLinear", q + [s, z], {})[0]


def simulated_quantize_dequantize(b, v, s, z=None, bounds=None):
    """The same algebra from elementary functions, for any width: ``(clip(round(v / s) + z,
    bounds) - z) * s`` (``z`` None: symmetric; ``bounds`` None: no clipping)."""
    no_inplace = {"inplace": False}
    q = b.call("Round", b.call("Div2", [v, s], no_inplace), {})
    if z is not None:
        q = b.call("Add2", q + [z], no_inplace)
    if bounds is not None:
        q = b.call("MinimumScalar", b.call("MaximumScalar", q, {"val": float(bounds[0])}),
                   {"val": float(bounds[1])})
    if z is not None:
        q = b.call("Sub2", q + [z], no_inplace)
    return b.call("Mul2", q + [s], no_inplace)[0]


def _lookup(ranges, v):
    """(lo, hi) for ``v`` from a StatisticsRecorder or a ``{variable: (lo, hi)}`` mapping."""
    if ranges is None:
        return None
    if hasattr(ranges, "range"):
        return ranges.range(v) if v in ranges else None
    return ranges.get(v)


class QuantizeDequantize(GraphPass):
    """Insert quantize/dequantize pairs on the data input and weight of inner-product layers.

    Args:
        ranges: recorded activation ranges, a :class:`~converters.statistics.StatisticsRecorder`
            or ``{variable: (min, max)}`` of the graph being converted; ``None`` quantizes
            weights only. A layer whose input has no range keeps a float input (noted).
        n: integer bit width (2..24); 8 gives QuantizeLinear/DequantizeLinear with int8.
        symmetric: zero point 0 and narrow range, or asymmetric with a zero point.
        per_channel: one weight scale per output channel (activations: always per tensor).
        functions: the inner-product function types to quantize.
    """

    name = "qdq"

    def __init__(self, ranges=None, n=8, symmetric=True, per_channel=True,
                 functions=tuple(WEIGHT_OUTPUT_AXES)):
        self.ranges = ranges
        self.n = check_bits(n)
        self.symmetric = bool(symmetric)
        self.per_channel = bool(per_channel)
        self.functions = check_function_names(functions, WEIGHT_OUTPUT_AXES)
        if ranges is not None and not (hasattr(ranges, "range") or hasattr(ranges, "get")):
            raise TypeError("ranges must be a StatisticsRecorder or a mapping "
                            "{{variable: (min, max)}}, got {!r}".format(type(ranges).__name__))

    def _activation(self, v):
        lohi = _lookup(self.ranges, v)
        if lohi is None:
            return "no recorded range for its input" if self.ranges is not None else None
        scale, zero = quant_math.linear_scale(lohi[0], lohi[1], self.n, self.symmetric)
        shape = (1,) * v.ndim
        return scale.reshape(shape), zero.reshape(shape)

    def _weight(self, f):
        w = f.inputs[1]
        source = parameter_source(w)  # a parameter seen through a Reshape holds its values
        if source is None:
            return "its weight is computed by the graph"
        values = source.d.reshape(w.shape)
        keep = None
        if self.per_channel:
            keep = WEIGHT_OUTPUT_AXES[f.info.type_name](w.ndim, f.info.args.get("channel_last"))
        if self.symmetric:
            top = quant_math.abs_max(values, keep)
            lo, hi = -top, top
        else:
            others = None if keep is None else tuple(a for a in range(w.ndim) if a not in keep)
            lo = np.min(values, axis=others, keepdims=True)
            hi = np.max(values, axis=others, keepdims=True)
        scale, zero = quant_math.linear_scale(lo, hi, self.n, self.symmetric)
        shape = np.broadcast_shapes(np.shape(scale), (1,) * w.ndim)
        return scale.reshape(shape), zero.reshape(shape)

    def plan(self, view):
        specs = {}
        for f in view.functions:
            if f.info.type_name in self.functions:
                x = f.inputs[0]
                if x not in specs:
                    specs[x] = self._activation(x)
                if f.inputs[1] not in specs:
                    specs[f.inputs[1]] = self._weight(f)
        return {"specs": specs, "made": {}}

    def _pair(self, v, scale, zero, b, like, suffix):
        s = b.parameter(like, scale, suffix + "_scale", need_grad=False)
        z = b.parameter(like, zero, suffix + "_zero_point", need_grad=False)
        if self.n == 8:
            return quantize_dequantize(b, v, s, z, "HALF_AWAY_FROM_ZERO", self.symmetric)
        bounds = quant_math.int_range(self.n, self.symmetric)
        return simulated_quantize_dequantize(b, v, s, None if self.symmetric else z, bounds)

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name not in self.functions:
            return None
        specs, made = plan["specs"], plan["made"]
        inputs, done = list(inputs), []
        weight = f.inputs[1]
        for slot, role in ((0, "input"), (1, "weight")):
            old, spec = f.inputs[slot], specs[f.inputs[slot]]
            if isinstance(spec, str):
                b.note(f, "kept", "{} left float: {}".format(role, spec))
            if spec is None or isinstance(spec, str):
                continue
            if old not in made:  # a shared input or weight is quantized once
                made[old] = self._pair(inputs[slot], spec[0], spec[1], b, weight,
                                       "qdq_" + role)
            inputs[slot] = made[old]
            done.append("{} {}".format(role, "per channel" if spec[0].size > 1 else "per tensor"))
        if not done:
            return None
        b.note(f, "quantized", "int{} {}: {}".format(
            self.n, "symmetric" if self.symmetric else "asymmetric", ", ".join(done)))
        return b.copy(f, inputs)
