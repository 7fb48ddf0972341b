"""Fixed-point passes: quantized weights of inner-product layers, quantized activations.

Weights (``FixedPointWeights``). The parameter stays float in the parameter store; the new
graph reads it through NNabla's ``FixedPointQuantize`` (the function NNabla's fixed-point
quantized layers use, without their ``W_q`` entries in the global scope)::

    Affine(x, W, b)  ->  Affine(x, FPQ(W; n, delta_W), FPQ(b; n_b, delta_b))

with ``q = sign(w) floor(|w| / delta + 1/2) delta`` clipped to ``L delta`` (see
``quant_math``). ``delta=None`` picks, from the values at conversion time, the smallest power
of two with ``L delta >= max|w|``: nothing clips and every weight moves by at most delta/2.
Per output channel, the step is a vector ``d`` (powers of two, so scaling is exact)::

    W_q = d * FPQ(W * (1/d); n, delta=1)

Activations (``FixedPointActivations``): ``y = act(x)`` becomes ``FPQ(act(x); n, delta)``,
unsigned after activations whose outputs are never negative. An unsigned FPQ clips below at
0, so ``FPQ_unsigned(ReLU(x)) == FPQ_unsigned(x)``: a ReLU is replaced, not followed. By
default every activation real networks use is quantized (:data:`DEFAULT_ACTIVATIONS`: the
ReLU family, ELU family, GELU/Swish/Mish, the sigmoid/tanh family and their hard forms,
SoftPlus): each one's output is the input of the next inner-product layer in a fixed-point
deployment. Identity is not an activation; other element-wise functions (Exp, Abs...) are
left alone unless listed in ``functions``.
"""
import math

import nnabla.function as _functions
import numpy as np

from . import quant_math
from .graph_view import parameter_source
from .rewrite import GraphPass

__all__ = ["FixedPointWeights", "FixedPointActivations", "WEIGHT_OUTPUT_AXES",
           "ACTIVATION_SIGN", "DEFAULT_ACTIVATIONS", "check_bits", "check_step", "check_function_names"]

MAX_BITS = 24  # float32 holds integers exactly up to 2^24: wider grids are not fixed point


# Axes of the weight that index output channels, per function type (ndim, channel_last).
WEIGHT_OUTPUT_AXES = {
    "Affine": lambda ndim, cl: tuple(range(1, ndim)),  # W is (inputs, *outputs)
    "Convolution": lambda ndim, cl: (0,),  # (O, C/g, *k) or (O, *k, C/g)
    "DepthwiseConvolution": lambda ndim, cl: (0,),
    "Deconvolution": lambda ndim, cl: (ndim - 1,) if cl else (1,),  # (C, O/g, *k)
    "DepthwiseDeconvolution": lambda ndim, cl: (0,),
}

# Whether an activation's output can be negative (signed) or not (unsigned) by default.
ACTIVATION_SIGN = {
    "ReLU": False, "ReLU6": False, "Sigmoid": False, "HardSigmoid": False, "SoftPlus": False,
    "Tanh": True, "HardTanh": True, "LeakyReLU": True, "ELU": True, "SELU": True,
    "CELU": True, "GELU": True, "Swish": True, "PReLU": True, "Mish": True, "Identity": True,
}
# What FixedPointActivations quantizes by default: every activation above but Identity.
DEFAULT_ACTIVATIONS = tuple(name for name in ACTIVATION_SIGN if name != "Identity")


def check_bits(n, what="n"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= MAX_BITS:
        raise ValueError("{} must be an integer bit width in [2, {}], got {!r}".format(
            what, MAX_BITS, n))
    return int(n)


def check_step(delta, what="delta", allow_none=True):
    if delta is None and allow_none:
        return None
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)) \
            or not math.isfinite(delta) or delta <= 0:
        raise ValueError("{} must be a finite step > 0{}, got {!r}".format(
            what, " (or None for automatic)" if allow_none else "", delta))
    return float(delta)


def check_function_names(names, allowed=None, what="functions"):
    """Validate NNabla function type names (e.g. 'ReLU'); ``allowed`` narrows the set."""
    try:
        names = (names,) if isinstance(names, str) else tuple(names)
    except TypeError:
        raise TypeError("{} must be a function type name or a list of them, got {!r}".format(
            what, names)) from None
    if not names:
        raise ValueError("{} must name at least one function type".format(what))
    for name in names:
        known = name in allowed if allowed is not None else hasattr(_functions, str(name))
        if not known:
            raise ValueError("{}: unknown function name {!r}; expected NNabla function type "
                             "names such as {}".format(what, name, ", ".join(
                                 sorted(allowed if allowed is not None else ACTIVATION_SIGN))))
    return names


def _pow2(delta):
    d = np.asarray(delta, dtype=np.float64).ravel()
    if d.size == 1:
        return "2^{:g}".format(np.log2(d[0]))
    return "2^[{:g}..{:g}] per channel".format(np.log2(d.min()), np.log2(d.max()))


class FixedPointWeights(GraphPass):
    """Fixed-point weights (and biases) for Affine/Convolution/Deconvolution/Depthwise*.

    Args:
        sign: signed weights (``True``) or unsigned (negative weights clip to 0).
        n: bit width of the weights, sign bit included (2..24).
        delta: weight step; ``None`` = automatic power of two from max|W| (nothing clips).
        per_channel: one automatic step per output channel instead of one per tensor.
        quantize_bias: also quantize biases (always one step per tensor).
        bias_n, bias_delta: bit width and step of biases (default: ``n``, automatic).
        functions: function types to convert (default: all inner-product types above).
        ste_fine_grained: NNabla's straight-through-estimator flag, for fine-tuning.
    """

    name = "fixed_point_weight"

    def __init__(self, sign=True, n=8, delta=None, per_channel=False, quantize_bias=True,
                 bias_n=None, bias_delta=None, functions=tuple(WEIGHT_OUTPUT_AXES),
                 ste_fine_grained=True):
        self.sign = bool(sign)
        self.n = check_bits(n)
        self.delta = check_step(delta)
        self.per_channel = bool(per_channel)
        self.quantize_bias = bool(quantize_bias)
        self.bias_n = check_bits(self.n if bias_n is None else bias_n, "bias_n")
        self.bias_delta = check_step(bias_delta, "bias_delta")
        self.functions = check_function_names(functions, WEIGHT_OUTPUT_AXES)
        self.ste_fine_grained = bool(ste_fine_grained)

    def _spec(self, f, slot):
        """(n, delta array) for input ``slot`` of ``f``, or a reason string to leave it."""
        v = f.inputs[slot]
        n, delta = (self.n, self.delta) if slot == 1 else (self.bias_n, self.bias_delta)
        if delta is not None:
            return n, np.array(delta, np.float32)
        source = parameter_source(v)  # a parameter seen through a Reshape holds its values
        if source is None:
            return "its {} is computed by the graph; give a fixed delta to quantize it".format(
                "weight" if slot == 1 else "bias")
        keep = None
        if slot == 1 and self.per_channel:
            keep = WEIGHT_OUTPUT_AXES[f.info.type_name](v.ndim, f.info.args.get("channel_last"))
        values = source.d.reshape(v.shape)
        return n, quant_math.power_of_two_delta(quant_math.abs_max(values, keep), n, self.sign)

    def plan(self, view):
        specs, reasons = {}, {}
        for f in view.functions:
            if f.info.type_name not in self.functions:
                continue
            slots = (1, 2) if self.quantize_bias else (1,)
            for slot in slots[:len(f.inputs) - 1]:
                v = f.inputs[slot]
                if v not in specs:  # a shared weight is quantized once, alike for every user
                    specs[v] = self._spec(f, slot)
                if isinstance(specs[v], str):
                    reasons.setdefault(f, []).append(specs[v])
        return {"specs": specs, "reasons": reasons, "made": {}}

    def _quantized(self, old, new, b, plan):
        made = plan["made"]
        if old not in made:
            n, delta = plan["specs"][old]
            args = dict(sign=self.sign, n=n, ste_fine_grained=self.ste_fine_grained)
            if delta.size == 1:
                made[old] = b.call("FixedPointQuantize", [new], dict(args, delta=float(delta)))[0]
            else:
                inv = b.parameter(old, (1.0 / delta).astype(np.float32), "fixed_point_inv_delta",
                                  need_grad=False)
                step = b.parameter(old, delta, "fixed_point_delta", need_grad=False)
                scaled = b.call("Mul2", [new, inv], {"inplace": False})[0]
                grid = b.call("FixedPointQuantize", [scaled], dict(args, delta=1.0))[0]
                made[old] = b.call("Mul2", [grid, step], {"inplace": False})[0]
        return made[old]

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name not in self.functions:
            return None
        inputs, done = list(inputs), []
        for slot in range(1, len(inputs)):
            spec = plan["specs"].get(f.inputs[slot])
            if spec is None or isinstance(spec, str):
                continue
            inputs[slot] = self._quantized(f.inputs[slot], inputs[slot], b, plan)
            role = "W" if slot == 1 else "b"
            done.append("{} n={} delta={}".format(role, spec[0], _pow2(spec[1])))
        for reason in plan["reasons"].get(f, ()):
            b.note(f, "kept", reason)
        if not done:
            return None
        b.note(f, "quantized", "; ".join(done))
        return b.copy(f, inputs)


class FixedPointActivations(GraphPass):
    """Fixed-point outputs of the listed activation functions.

    Args:
        functions: NNabla function type names whose output is quantized (default
            :data:`DEFAULT_ACTIVATIONS`).
        n: bit width (2..24); delta: step (> 0; the range is ``L * delta``).
        sign: ``None`` = from :data:`ACTIVATION_SIGN` (unsigned after ReLU, ReLU6, Sigmoid...,
            signed for others), or force signed/unsigned for all.
        ste_fine_grained: NNabla's straight-through-estimator flag, for fine-tuning.
    """

    name = "fixed_point_activation"

    def __init__(self, functions=DEFAULT_ACTIVATIONS, n=8, delta=2 ** -4, sign=None, ste_fine_grained=True):
        self.functions = check_function_names(functions)
        self.n = check_bits(n)
        self.delta = check_step(delta, allow_none=False)
        self.sign = None if sign is None else bool(sign)
        self.ste_fine_grained = bool(ste_fine_grained)

    def _sign(self, type_name):
        return ACTIVATION_SIGN.get(type_name, True) if self.sign is None else self.sign

    def rewrite(self, f, inputs, b, plan):
        kind = f.info.type_name
        if kind not in self.functions:
            return None
        if len(f.outputs) != 1:
            b.note(f, "kept", "it has {} outputs".format(len(f.outputs)))
            return None
        sign = self._sign(kind)
        args = dict(sign=sign, n=self.n, delta=self.delta, ste_fine_grained=self.ste_fine_grained)
        if kind == "ReLU" and not sign:
            b.note(f, "replaced", "unsigned n={} delta={:g} (clips at 0 like ReLU)".format(
                self.n, self.delta))
            return b.call("FixedPointQuantize", [inputs[0]], args)
        out = b.copy(f, inputs)
        b.note(f, "quantized", "{} n={} delta={:g}".format(
            "signed" if sign else "unsigned", self.n, self.delta))
        return b.call("FixedPointQuantize", out, args)
