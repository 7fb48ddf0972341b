"""Channel pruning math: pure numpy, no graph.

An output channel ``o`` of an inner-product layer is kept when the weights producing it have
a sum of squares (the squared L2 norm) above the threshold, NNabla's rule
``sum(W[o] ** 2) > threshold``; otherwise its weights and its bias are set to 0::

    W'[o] = m[o] W[o],   b'[o] = m[o] b[o],   m[o] = 1 if ||W[o]||^2 > threshold else 0

That is a per-output-channel scale by 0 or 1, the same layout algebra as folding a BN into the
layer (:func:`converters.bn_math.fold_into_producer` with ``c0 = m``, ``c1 = 0``), so the
masking reuses it. Which weights produce output channel ``o``:

- Convolution / DepthwiseConvolution ``(O, ...)``: ``W[o]`` (any group, any layout);
- Deconvolution ``(I, O/g, K...)`` or channel-last ``(I, K..., O/g)``: ``o = g (O/g) + j``
  reads ``W[g-th slice of I, j]`` (NNabla's pruner takes axis ``O/g`` over all groups);
- DepthwiseDeconvolution ``(C, K...)``: output ``o`` sums inputs ``i`` with
  ``i // divisor == o`` (NNabla's pruner takes axis 0, the inputs);
- Affine ``(I, O...)``: ``W[:, o...]``.
"""
import numpy as np

from .bn_math import fold_into_producer

__all__ = ["output_channel_sq_norms", "prune_mask", "pruned", "PRUNABLE"]

PRUNABLE = ("Convolution", "Deconvolution", "DepthwiseConvolution", "DepthwiseDeconvolution",
            "Affine")


def _deconv_norms(sq, args):
    g = args.get("group", 1)
    out_axis = sq.ndim - 1 if args.get("channel_last", False) else 1
    grouped = np.moveaxis(sq.reshape((g, sq.shape[0] // g) + sq.shape[1:]), out_axis + 1, 1)
    return grouped.reshape(g, grouped.shape[1], -1).sum(axis=2).reshape(-1)  # (g, O/g) -> O


def output_channel_sq_norms(kind, w, args=None, out_ndim=1):
    """Sum of squares of the weights producing each output channel, laid out as
    ``fold_into_producer`` wants its scale: a vector, or the out shape for Affine
    (``out_ndim`` trailing axes of ``W``)."""
    args = dict(args or {})
    sq = np.square(np.asarray(w, np.float64))
    if kind in ("Convolution", "DepthwiseConvolution"):
        return sq.reshape(sq.shape[0], -1).sum(axis=1)
    if kind == "Deconvolution":
        return _deconv_norms(sq, args)
    if kind == "DepthwiseDeconvolution":
        per_input = sq.reshape(sq.shape[0], -1).sum(axis=1)
        return per_input.reshape(-1, args.get("divisor", 1)).sum(axis=1)
    if kind == "Affine":
        return sq.sum(axis=tuple(range(sq.ndim - out_ndim)))
    raise ValueError("cannot prune a {}".format(kind))


def prune_mask(kind, w, threshold, args=None, out_ndim=1):
    """1 for the output channels kept, 0 for the pruned ones (float32, ``fold`` layout)."""
    norms = output_channel_sq_norms(kind, w, args, out_ndim)
    return (norms > threshold).astype(np.float32)


def pruned(kind, w, b, mask, args=None):
    """``(W', b')`` with the channels where ``mask`` is 0 zeroed; ``b'`` is None without bias."""
    w2, b2 = fold_into_producer(kind, w, b, mask, np.zeros_like(mask), args)
    return w2, (None if b is None else b2.reshape(np.shape(b)))
