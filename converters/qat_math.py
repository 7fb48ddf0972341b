"""Scales and zero points of quantization-aware training from recorded ranges: pure numpy.

A recorder of NNabla's QAT flow (``nnabla.utils.qnn``) keeps the range a tensor took during
training forwards: min/max kinds (``MinMaxMinMax``, ``MinMaxMva``) keep ``m`` and ``M``, max
kinds (``AbsMax``, ``MaxMax``, ``MaxMva``) keep ``M`` alone. With ``n``-bit integers
``[qmin, qmax] = [-2^(n-1), 2^(n-1) - 1]`` and ``de = qmax - qmin`` (``narrow_range``: one less,
as -2^(n-1) is not used)::

    symmetric:   r = max(|m|, |M|)  (max kinds: r = M),   scale = 2 r / de,   zero point 0
    asymmetric:  scale = (M - m) / de,   zero point = qmin - round(m / scale)

so that ``[-r, r]`` (or ``[m, M]``) is what the integers cover. Symmetric is NNabla's default
(``QATConfig.zero_point = False``). NNabla itself computes ``scale = (M - m) / de`` with zero
point 0 for the min/max kinds, which covers only ``[-(M - m)/2, (M - m)/2]``: for a ReLU
output ``[0, M]`` everything above about ``M / 2`` clips. The power-of-two rounding of the
config (``pow2``: CEIL, ROUND, FLOOR or NOTROUND) then applies to ``log2(scale)``.

An empty range (``r = 0``: the recorder saw only zeros, or never ran in training mode) has no
scale: ``None``, and the tensor stays float. NNabla then divides by a zero scale.

The bias of an inner-product layer is quantized on the grid of its accumulator, ``s_b = s_x
s_w`` with zero point 0 (ONNX / TensorRT int32 biases); NNabla rounds it to int8 at that scale,
which clips every bias above ``127 s_x s_w``.
"""
import numpy as np

__all__ = ["RECORDER_KINDS", "int_bounds", "recorded_scale", "bias_scale", "round_to_pow2"]

# recorder function type -> which statistics its state holds
RECORDER_KINDS = {
    "MinMaxMinMaxRecorder": "minmax", "MinMaxMvaRecorder": "minmax",
    "AbsMaxRecorder": "max", "MaxMaxRecorder": "max", "MaxMvaRecorder": "max",
}

_ROUND = {"CEIL": np.ceil, "ROUND": np.round, "FLOOR": np.floor, "NOTROUND": None}


def int_bounds(n=8, narrow_range=False, signed=True):
    """``(qmin, qmax)`` of ``n``-bit integers (signed: -128..127; narrow: -127..127)."""
    if not signed:
        return 0, 2 ** n - 1
    return -2 ** (n - 1) + (1 if narrow_range else 0), 2 ** (n - 1) - 1


def round_to_pow2(scale, method="NOTROUND"):
    """``2^round(log2(scale))`` with the rounding ``method`` (an enum with ``.value`` or a name)."""
    method = getattr(method, "value", method)
    if method not in _ROUND:
        raise ValueError("pow2 must be one of {}, got {!r}".format(", ".join(_ROUND), method))
    fn = _ROUND[method]
    scale = np.asarray(scale, np.float64)
    return scale if fn is None else np.exp2(fn(np.log2(scale)))


def recorded_scale(kind, state, n=8, narrow_range=False, zero_point=False, pow2="NOTROUND",
                   signed=True):
    """``(scale, zero_point)`` (float32 arrays shaped like the state) from a recorder's state
    (``(m, M)`` for min/max kinds, ``(M,)`` for max kinds), or None for an empty range."""
    if kind not in ("minmax", "max"):
        raise ValueError("unknown recorder kind {!r}".format(kind))
    state = [np.asarray(s, np.float64) for s in state]
    hi = state[-1]
    lo = state[0] if kind == "minmax" else -hi
    qmin, qmax = int_bounds(n, narrow_range, signed)
    de = qmax - qmin
    if zero_point:
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)  # 0 must stay exact
        span = hi - lo
    else:
        span = 2.0 * np.maximum(np.abs(lo), np.abs(hi))
    if not np.all(np.isfinite(span)) or np.any(span <= 0):
        return None
    scale = round_to_pow2(span / de, pow2)
    zero = np.zeros_like(scale) if not zero_point else np.clip(qmin - np.round(lo / scale), qmin, qmax)
    return scale.astype(np.float32), zero.astype(np.float32)


def bias_scale(scale_x, scale_w):
    """The accumulator step ``s_x s_w`` of a layer's bias (per-tensor scales)."""
    s = np.asarray(scale_x, np.float64).reshape(-1) * np.asarray(scale_w, np.float64).reshape(-1)
    return s.astype(np.float32)
