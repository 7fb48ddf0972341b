"""Batch-normalization folding math: pure numpy, no graph.

Inference BN is an affine map per channel::

    BN(x) = gamma * (x - mean) / sqrt(var + eps) + beta = c0 * x + c1
    c0 = gamma / sqrt(var + eps),  c1 = beta - mean * c0

(``gamma = 1`` with ``no_scale``, ``beta = 0`` with ``no_bias``.)

Folding into the *preceding* linear layer ``y = W (*) x + b`` scales every weight that
produces output channel ``o`` by ``c0[o]``: ``W'[o] = c0[o] W[o]``, ``b' = c0 b + c1``.
Where the output channel lives in ``W`` depends on the layer:

- Convolution / DepthwiseConvolution: axis 0 of ``W`` (any group, any layout);
- Deconvolution ``(in, out/g, k...)`` or channel-last ``(in, k..., out/g)``: output channel
  ``o = group * (out/g) + j`` with ``j`` on the out/g axis and the group taken from ``in``;
- DepthwiseDeconvolution ``(C, k...)``: input channel ``i`` feeds output ``i // divisor``;
- Affine ``(in..., out...)``: the trailing out dims.

Folding into the *following* layer ``z = W (*) BN(x) + b`` scales the weights reading input
channel ``i`` by ``c0[i]`` and moves the shift into the bias: ``b'[o] = b[o] + sum W[o, i, k]
c1[i]``. That is exact for Affine, and for convolutions only when no zero padding meets a
shifted input (no padding, or ``c1 == 0``): padding inserts 0 where ``c1`` would be.

Every function returns new arrays; the inputs are never written.
"""
import numpy as np

__all__ = ["bn_scale_shift", "fold_into_producer", "fold_into_consumer", "PRODUCER_KINDS",
           "CONSUMER_KINDS"]


def bn_scale_shift(mean, var, eps, gamma=None, beta=None):
    """Per-channel ``(c0, c1)`` of an inference BN, float32, shaped like ``mean``."""
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    if np.any(var + eps <= 0):
        raise ValueError("BatchNormalization variance + eps must be positive (min {})".format(
            float(np.min(var + eps))))
    c0 = 1.0 / np.sqrt(var + eps)
    if gamma is not None:
        c0 = c0 * np.asarray(gamma, np.float64)
    c1 = -mean * c0
    if beta is not None:
        c1 = c1 + np.asarray(beta, np.float64)
    return c0.astype(np.float32), c1.astype(np.float32)


def _along(vec, ndim, axis):
    """``vec`` reshaped to broadcast along ``axis`` of an ``ndim``-dimensional array."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(vec, np.float32).reshape(shape)


def _bias(b, c0, c1, shape):
    """``c0 * b + c1`` (or ``c1`` when there is no bias), float32, of ``shape``."""
    base = c1 if b is None else np.asarray(b, np.float32) * c0 + c1
    return np.ascontiguousarray(np.broadcast_to(base, shape), dtype=np.float32)


# --- folding into the preceding layer ---------------------------------------------------
# Each takes (W, b, c0, c1, args, out) with c0/c1 laid out over the layer's output channels
# (a vector for convolutions, the out shape for Affine) and returns (W', b'); W' is written
# into ``out`` when given (the caller's freshly allocated parameter memory).

def _conv_out(w, b, c0, c1, args, out):
    return np.multiply(w, _along(c0, w.ndim, 0), out=out), _bias(b, c0, c1, c0.shape)


def _deconv_out(w, b, c0, c1, args, out):
    g = args.get("group", 1)
    out_axis = w.ndim - 1 if args.get("channel_last", False) else 1
    per_group = w.shape[out_axis]
    # View W as (g, in/g, rest...) so each group meets its own slice of c0.
    grouped = w.reshape((g, w.shape[0] // g) + w.shape[1:])
    scale_shape = [1] * grouped.ndim
    scale_shape[0], scale_shape[out_axis + 1] = g, per_group
    target = None if out is None else out.reshape(grouped.shape)  # a view: out is contiguous
    folded = np.multiply(grouped, c0.reshape(scale_shape), out=target)
    return folded.reshape(w.shape), _bias(b, c0, c1, c0.shape)


def _depthwise_deconv_out(w, b, c0, c1, args, out):
    scale = _along(np.repeat(c0, args.get("divisor", 1)), w.ndim, 0)
    return np.multiply(w, scale, out=out), _bias(b, c0, c1, c0.shape)


def _affine_out(w, b, c0, c1, args, out):
    out_shape = w.shape[w.ndim - c0.ndim:]
    return np.multiply(w, c0, out=out), _bias(b, c0, c1, out_shape)


PRODUCER_KINDS = {
    "Convolution": _conv_out,
    "DepthwiseConvolution": _conv_out,
    "Deconvolution": _deconv_out,
    "DepthwiseDeconvolution": _depthwise_deconv_out,
    "Affine": _affine_out,
}


def fold_into_producer(kind, w, b, c0, c1, args=None, out=None):
    """``(W', b')`` of layer ``kind`` followed by the per-channel map ``c0 * y + c1``.

    ``out``: optional float32 array shaped like ``w`` to receive ``W'`` (never ``w`` itself).
    """
    try:
        fold = PRODUCER_KINDS[kind]
    except KeyError:
        raise ValueError("cannot fold a BatchNormalization into a {}".format(kind)) from None
    w = np.asarray(w, np.float32)
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    if out is not None and (out.shape != w.shape or np.may_share_memory(out, w)):
        raise ValueError("out must be a separate array of shape {}".format(w.shape))
    return fold(w, b, c0, c1, dict(args or {}), out)


# --- folding into the following layer ---------------------------------------------------

def _conv_in(w, b, c0, c1, args, group, channel_last):
    out = w.shape[0]
    in_axis = w.ndim - 1 if channel_last else 1
    per_group_in, per_group_out = w.shape[in_axis], out // group
    # scale[o, j] = c0[group(o) * in/g + j]: which input channel weight (o, j) reads.
    def per_weight(vec):
        return np.repeat(vec.reshape(group, 1, per_group_in), per_group_out, axis=1).reshape(
            out, per_group_in)
    s0, s1 = per_weight(c0), per_weight(c1)
    shape = [out] + [1] * (w.ndim - 1)
    shape[in_axis] = per_group_in
    folded = w * s0.reshape(shape)
    shift = (w.astype(np.float64) * s1.reshape(shape)).reshape(out, -1).sum(axis=1)
    base = np.zeros(out, np.float64) if b is None else np.asarray(b, np.float64)
    return folded, (base + shift).astype(np.float32)


def _conv_consumer(w, b, c0, c1, args):
    return _conv_in(w, b, c0, c1, args, args.get("group", 1), args.get("channel_last", False))


def _depthwise_consumer(w, b, c0, c1, args):
    # A depthwise conv is a grouped conv with one input channel per group: W (C*m, k...).
    channels = c0.size
    folded, bias = _conv_in(w.reshape((w.shape[0], 1) + w.shape[1:]), b, c0, c1, args,
                            channels, False)
    return folded.reshape(w.shape), bias


def _affine_consumer(w, b, c0, c1, args):
    # W holds the input dims flattened or not: (in..., out...); find where they end.
    sizes = np.cumprod(w.shape)
    n_in = int(np.searchsorted(sizes, c0.size)) + 1
    if sizes[n_in - 1] != c0.size:
        raise ValueError("Affine weight {} does not start with {} input values".format(
            w.shape, c0.size))
    w2d = w.reshape(c0.size, -1)
    folded = (w2d * c0.reshape(-1, 1)).reshape(w.shape)
    shift = c1.reshape(-1).astype(np.float64) @ w2d.astype(np.float64)
    base = 0.0 if b is None else np.asarray(b, np.float64).reshape(-1)
    return folded, (base + shift).astype(np.float32).reshape(w.shape[n_in:])


CONSUMER_KINDS = {
    "Convolution": _conv_consumer,
    "DepthwiseConvolution": _depthwise_consumer,
    "Affine": _affine_consumer,
}


def fold_into_consumer(kind, w, b, c0, c1, args=None):
    """``(W', b')`` of layer ``kind`` reading ``c0 * x + c1`` instead of ``x``.

    ``c0``/``c1`` are laid out over the layer's input channels (a vector for convolutions,
    the full input shape after ``base_axis`` for Affine). The caller checks exactness
    (padding); this function only does the algebra.
    """
    try:
        fold = CONSUMER_KINDS[kind]
    except KeyError:
        raise ValueError("cannot fold a BatchNormalization into a following {}".format(kind)) \
            from None
    w = np.asarray(w, np.float32)
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return fold(w, b, c0, c1, dict(args or {}))
