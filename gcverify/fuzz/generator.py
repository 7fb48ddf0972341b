"""Random, valid NNabla graphs from a seed: ``generate(seed) -> Recipe``, ``random_model(seed)``.

A graph grows one node at a time from a ``numpy.random.RandomState(seed)``: pick an op kind
(weighted), pick its sources among the values built so far (mostly values nobody reads yet,
sometimes an already-read one, which makes a fork), draw its arguments from the op table,
and keep it if the shape formulas accept it and it stays tiny. Inner-product nodes are often
followed by a BatchNormalization (the pattern folding converters look for) and sometimes
reuse an earlier node's parameters (shared weights). Every value nobody reads becomes an
output, plus a few read ones (an output that also feeds another layer).

The size is drawn first, so ``generate(seed, size=n)`` with a smaller ``n`` replays the same
first draws: that is what the shrinker's size search relies on.
"""
from dataclasses import dataclass, field

import numpy as np

from .ops import ACTIVATIONS, OPS
from .recipe import Assembler, InvalidRecipe, Recipe

__all__ = ["GenOptions", "generate", "random_model", "DEFAULT_WEIGHTS"]

_INNER = ("Convolution", "Deconvolution", "DepthwiseConvolution", "DepthwiseDeconvolution", "Affine")

DEFAULT_WEIGHTS = dict(
    {"Convolution": 4.0, "Deconvolution": 1.5, "DepthwiseConvolution": 1.0,
     "DepthwiseDeconvolution": 0.5, "Affine": 1.0, "BatchNormalization": 3.0,
     "MaxPooling": 1.0, "AveragePooling": 1.0, "SumPooling": 1.0, "Unpooling": 0.8,
     "Concatenate": 1.5, "Add2": 1.5, "Mul2": 0.5},
    **{name: 0.4 for name in ACTIVATIONS})


@dataclass(frozen=True)
class GenOptions:
    """What graphs look like. ``weights`` chooses the op kinds (drop one to never draw it)."""

    min_nodes: int = 1
    max_nodes: int = 10
    max_inputs: int = 3
    spatial_dims: tuple = (1, 2, 2, 3)  # drawn uniformly, so 2D is twice as likely
    weights: dict = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    max_batch: int = 3
    max_channels: int = 6
    max_spatial: int = 12
    max_elements: int = 3000
    p_fork: float = 0.3          # a source that is already read by another node
    p_share: float = 0.3         # reuse an earlier node's parameters
    p_bn_after: float = 0.4      # BatchNormalization right after an inner-product node
    p_extra_output: float = 0.1  # a read value that is also an output
    odd: float = 0.1             # legal but unusual arguments (BN on a spatial axis, ...)

    def __post_init__(self):
        unknown = sorted(set(self.weights) - set(OPS))
        if unknown:
            raise ValueError("GenOptions.weights names unknown ops {}; known: {}".format(
                unknown, ", ".join(sorted(OPS))))
        if not 1 <= self.min_nodes <= self.max_nodes:
            raise ValueError("need 1 <= min_nodes <= max_nodes, got {} and {}".format(
                self.min_nodes, self.max_nodes))


_SPATIAL_RANGE = {1: (4, 12), 2: (3, 8), 3: (2, 5)}


def _input_shapes(rng, opts):
    d = opts.spatial_dims[rng.randint(len(opts.spatial_dims))]
    lo, hi = _SPATIAL_RANGE[d]
    batch = rng.randint(1, opts.max_batch + 1)
    spatial = tuple(int(rng.randint(lo, min(hi, opts.max_spatial) + 1)) for _ in range(d))
    n = rng.randint(1, opts.max_inputs + 1) if rng.rand() < 0.4 else 1
    c0 = rng.randint(1, 5)
    # equal channels make Add2/Mul2 of two inputs possible
    return [(batch, c0 if rng.rand() < 0.5 else int(rng.randint(1, 5))) + spatial for _ in range(n)]


def _pick_source(rng, asm, opts, accept=lambda shape: True):
    ids = [i for i, s in enumerate(asm.shapes) if accept(s)]
    fresh = [i for i in ids if asm.uses[i] == 0]
    pool = fresh if fresh and rng.rand() >= opts.p_fork else ids
    return pool[rng.randint(len(pool))] if pool else None


def _sample_join(rng, asm, op_name, opts):
    """Sources for Add2/Mul2 (equal shapes) or Concatenate (equal but for one axis)."""
    concat = op_name == "Concatenate"
    axis = 1
    if concat and rng.rand() < opts.odd:
        axis = rng.randint(2, 5)  # concatenation along a spatial axis: legal, rare
    groups = {}
    for i, s in enumerate(asm.shapes):
        if len(s) > axis:
            groups.setdefault(s[:axis] + (None,) + s[axis + 1:] if concat else s, []).append(i)
    args = {"axis": axis} if concat else {}
    pairs = [g for g in groups.values() if len(g) >= 2]
    if not pairs:
        if rng.rand() < opts.odd and not concat:  # x + x: one value read twice by one node
            v = _pick_source(rng, asm, opts)
            return {"op": op_name, "src": [v, v], "args": args, "share": None}
        return None
    group = pairs[rng.randint(len(pairs))]
    n = 2 if not concat or len(group) == 2 else rng.randint(2, min(3, len(group)) + 1)
    src = [int(v) for v in rng.permutation(group)[:n]]
    return {"op": op_name, "src": src, "args": args, "share": None}


def _sample_node(rng, asm, op_name, opts):
    op = OPS[op_name]
    if op.arity != 1:
        return _sample_join(rng, asm, op_name, opts)
    v = _pick_source(rng, asm, opts)
    args = op.sample(rng, asm.shapes[v], opts)
    if args is None:
        return None
    node = {"op": op_name, "src": [v], "args": args, "share": None}
    if op_name in _INNER + ("BatchNormalization",) and rng.rand() < opts.p_share:
        for j, other in enumerate(asm.nodes):
            if other["op"] == op_name and other.get("share") is None:
                candidate = {"op": op_name, "src": [v], "args": dict(other["args"]), "share": j}
                if _fits(asm, candidate, opts):
                    return candidate
    return node


def _fits(asm, node, opts):
    try:
        shape = asm.shape_of(node)
    except InvalidRecipe:
        return False
    return (int(np.prod(shape)) <= opts.max_elements
            and all(s <= opts.max_spatial for s in shape[2:]))


def generate(seed, size=None, options=None):
    """A random valid graph as a :class:`Recipe`; ``size`` = number of node draws."""
    opts = options or GenOptions()
    rng = np.random.RandomState(seed)
    drawn = rng.randint(opts.min_nodes, opts.max_nodes + 1)  # always drawn: keeps the stream aligned
    size = drawn if size is None else size
    asm = Assembler(_input_shapes(rng, opts), materialize=False)
    names = sorted(n for n, w in opts.weights.items() if w > 0)
    probs = np.array([opts.weights[n] for n in names], dtype=float)
    probs /= probs.sum()
    steps = 0
    while steps < size:
        steps += 1
        for _ in range(12):  # some ops do not apply to some shapes: draw again
            node = _sample_node(rng, asm, names[rng.choice(len(names), p=probs)], opts)
            if node is not None and _fits(asm, node, opts):
                v = asm.apply(node)
                break
        else:
            continue
        if (node["op"] in _INNER and steps < size and rng.rand() < opts.p_bn_after
                and "BatchNormalization" in names):
            bn = {"op": "BatchNormalization", "src": [v],
                  "args": OPS["BatchNormalization"].sample(rng, asm.shapes[v], opts), "share": None}
            if _fits(asm, bn, opts):
                asm.apply(bn)
                steps += 1
    if not asm.nodes:  # nothing applied to these shapes: an activation always does
        asm.apply({"op": "ReLU", "src": [0], "args": {}, "share": None})
    k = asm.n_inputs
    outputs = [v for v in range(k, len(asm.shapes))
               if asm.uses[v] == 0 or rng.rand() < opts.p_extra_output]
    recipe = Recipe([asm.shapes[i] for i in range(k)], asm.nodes, outputs,
                    param_seed=int(rng.randint(2 ** 31)), data_seed=int(rng.randint(2 ** 31)),
                    origin={"seed": int(seed), "size": int(size)})
    return recipe.pruned()


def random_model(seed, size=None, options=None):
    """``generate(seed, size, options).build()``: a :class:`gcverify.Model`."""
    return generate(seed, size, options).build()
