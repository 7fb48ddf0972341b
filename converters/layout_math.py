"""Pure permutation algebra and numpy weight transforms for layout conversion (no graph).

A tensor's *layout* is a permutation ``p`` of its axes relative to the original graph's
tensor ``t``: the new graph holds ``transpose(t, p)``, i.e. new axis ``k`` is original axis
``p[k]``. The identity permutation means "as in the original".

- ``move_axis_perm(n, src, dst)``: the permutation that moves axis ``src`` to ``dst``;
  channel-last is ``move_axis_perm(n, c, n - 1)``, channel-first ``move_axis_perm(n, n - 1, c)``.
- ``relayout_axes(p, q)``: the ``F.transpose`` axes turning a tensor held in layout ``p``
  into layout ``q`` (``axes[j] = p^-1[q[j]]``).
- ``drop_axes(p, removed)`` / ``insert_axis(p, a)``: the layout of a reduction's (or split's)
  output without the removed axes, and of a stack's output with a new axis ``a``.
- Weights: NNabla's channel-last convolution weight is ``(O, K..., I/g)`` and the
  channel-first one ``(O, I/g, K...)``; a deconvolution's ``(I, K..., O/g)`` vs
  ``(I, O/g, K...)``. Both directions are ``move_axis_perm(ndim, 1, ndim - 1)`` and its
  inverse applied to the weight. An Affine reading a re-laid-out input gets the rows of
  its weight permuted the same way (``affine_rows``).
"""
import numpy as np

__all__ = [
    "identity", "is_identity", "invert", "move_axis_perm", "relayout_axes", "drop_axes",
    "insert_axis", "permute_values", "expand_trailing", "OperandMap", "affine_rows",
    "conv_weight_to_last", "conv_weight_to_first",
]


def identity(n):
    return tuple(range(n))


def is_identity(p):
    return all(i == a for i, a in enumerate(p))


def invert(p):
    inv = [0] * len(p)
    for k, a in enumerate(p):
        inv[a] = k
    return tuple(inv)


def move_axis_perm(n, src, dst):
    """The layout that holds axis ``src`` at position ``dst``, the others in order."""
    src, dst = src % n, dst % n
    rest = [a for a in range(n) if a != src]
    rest.insert(dst, src)
    return tuple(rest)


def relayout_axes(p, q):
    """Transpose axes taking a tensor in layout ``p`` to layout ``q`` (same original)."""
    inv = invert(p)
    return tuple(inv[a] for a in q)


def drop_axes(p, removed):
    """Layout of ``t`` with the original axes ``removed`` reduced away (no keep_dims)."""
    removed = set(removed)
    return tuple(a - sum(1 for r in removed if r < a) for a in p if a not in removed)


def insert_axis(p, a):
    """Layout of ``stack(..., axis=a)`` when every stacked input has layout ``p``."""
    shifted = [x + 1 if x >= a else x for x in p]
    shifted.insert(a, a)
    return tuple(shifted)


def permute_values(values, p):
    """Per-axis argument values (one per original axis) reordered to layout ``p``."""
    values = list(values)
    return [values[a] for a in p]


def expand_trailing(values, ndim, fill):
    """NNabla's Slice/Pad arguments may cover only the trailing axes; make them full rank.

    ``fill`` is a value, or a callable ``axis -> value`` for the leading axes.
    """
    values = list(values)
    lead = ndim - len(values)
    return [fill(i) if callable(fill) else fill for i in range(lead)] + values


class OperandMap:
    """How an operand (weight, bias, broadcast term) of the original is re-shaped for the
    new function: ``reshape(pre)`` -> ``transpose(perm)`` -> ``reshape(post)``, each optional.
    Applied to numpy arrays here, and to graph variables by the layout pass."""

    __slots__ = ("pre", "perm", "post")

    def __init__(self, perm=None, pre=None, post=None):
        self.pre = tuple(pre) if pre is not None else None
        self.perm = tuple(perm) if perm is not None and not is_identity(perm) else None
        self.post = tuple(post) if post is not None else None

    def is_identity(self):
        return self.pre is None and self.perm is None and self.post is None

    def moves_data(self, shape):
        """False when applying the map to an array of ``shape`` is a pure reshape: the
        transpose only moves size-1 axes, so row-major memory order is unchanged."""
        if self.perm is None:
            return False
        pre = self.pre if self.pre is not None else tuple(shape)
        big = [a for a in self.perm if pre[a] != 1]
        return big != sorted(big)

    def shape_of(self, shape):
        """The shape the map produces from an array of ``shape``."""
        if self.post is not None:
            return self.post
        pre = self.pre if self.pre is not None else tuple(shape)
        return tuple(pre[a] for a in self.perm) if self.perm is not None else pre

    def key(self):
        return (self.pre, self.perm, self.post)

    def apply(self, array):
        """The mapped array; may be a view of ``array`` (callers copy it into a new parameter)."""
        a = np.asarray(array)
        if self.pre is not None:
            a = a.reshape(self.pre)
        if self.perm is not None:
            a = np.transpose(a, self.perm)
        if self.post is not None:
            a = a.reshape(self.post)
        return a

    def __repr__(self):
        return "OperandMap(pre={}, perm={}, post={})".format(self.pre, self.perm, self.post)


def affine_rows(weight_shape, in_shape, base_axis, p):
    """OperandMap permuting an Affine weight's rows for an input held in layout ``p``.

    The weight is ``(prod(in_shape[base_axis:]), L...)``; flattening the re-laid-out input
    visits the original positions in the order ``p[base_axis:]``, so the rows follow it.
    """
    tail = tuple(in_shape[base_axis:])
    rest = tuple(weight_shape[1:])
    sub = [a - base_axis for a in p[base_axis:]]
    perm = sub + [len(tail) + j for j in range(len(rest))]
    return OperandMap(perm=perm, pre=tail + rest, post=tuple(weight_shape))


def conv_weight_to_last(w):
    """``(O, I/g, K...)`` -> ``(O, K..., I/g)`` (Convolution); same for Deconvolution."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(w), 1, -1))


def conv_weight_to_first(w):
    """``(O, K..., I/g)`` -> ``(O, I/g, K...)``, the inverse of :func:`conv_weight_to_last`."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(w), -1, 1))
