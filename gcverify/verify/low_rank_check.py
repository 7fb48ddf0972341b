"""A lossy low-rank split judged against its declared spec with the verifier's own SVD.

Below full energy a split changes the numbers by design, so "the outputs did not move" proves
nothing; what a correct split guarantees is Eckart-Young: the rank-r factors ``A B`` of a layer
``M = U diag(s) V^T`` are its *best* rank-r approximation, so

    ||M - A B||_F = sqrt(sum_{i >= r} s_i^2)    and    ||M - A B||_2 = s_r.

For every layer the spec covers (:class:`~gcverify.core.low_rank.LowRankSpec`), from
``numpy.linalg.svd`` of the original weight (no code of the converters):

1. the rank: the spec's ``rank``, or the fewest singular values keeping ``energy`` (any rank
   within 1e-9 of that threshold is accepted), and whether the layer must be split at all
   (``skip_if_larger``, grouped or channel-last convolutions and computed weights stay whole);
2. the split the converted graph computes, read from its two layers (``A B``, the inner size
   being the rank used), must match: the rank, and both error norms within the bound (the
   figure ``low_rank_bound`` is the worst Frobenius error over its bound: 1.0 for an exact
   truncated SVD, more for a worse one); a layer that must stay whole must keep its weight;
3. the outputs must match the reference forward: the original with each split layer's weight
   replaced by the verifier's own best rank-r approximation, within the row's tolerance.

Reported: how many layers were split, the largest share of energy a layer discarded, and the
SQNR of the outputs against the float original.
"""
import nnabla as nn
import numpy as np

from converters.fast_rebuild import fast_nnabla_imports
from converters.graph_view import GraphView, parameter_source

from ..core.running import feed
from .model_copy import copy_model
from .numeric import numeric_check
from .profile import sqnr_db
from .results import MAX_LINES, CheckResult
from .structure import origins

__all__ = ["low_rank_check", "expected_split", "split_of", "best_rank"]

ENERGY_SLACK = 1e-9  # a rank this close to the energy threshold may go either way
REL_SLACK = 1e-5     # float32 factors: the error may exceed the bound by this share of ||M||_F


def _matrix(f):
    """The weight of ``f`` as the matrix a split factors, or a reason it stays whole."""
    leaf = parameter_source(f.inputs[1])
    if leaf is None:
        return "its weight is computed by the graph"
    args = f.info.args
    if f.info.type_name == "Convolution" and (args.get("group", 1) != 1 or args.get("channel_last", False)):
        return "grouped or channel-last convolution"
    w = leaf.d.reshape(f.inputs[1].shape).astype(np.float64)
    return w.reshape(w.shape[0], -1)


def best_rank(s, spec):
    """The ranks the spec allows for singular values ``s`` (descending): one, or two at a tie."""
    if spec.rank is not None:
        return [min(spec.rank, s.size)]
    energy = np.cumsum(s ** 2) / max(float(np.sum(s ** 2)), 1e-300)
    return [r for r in range(1, s.size + 1)
            if energy[r - 1] >= spec.energy - ENERGY_SLACK and (r == 1 or energy[r - 2] < spec.energy + ENERGY_SLACK)]


def expected_split(f, spec):
    """``(matrix, singular values, allowed ranks)`` for a layer to split, or a reason string
    for a layer that must stay whole; None for a layer the spec does not cover."""
    if f.info.type_name not in spec.functions:
        return None
    m = _matrix(f)
    if isinstance(m, str):
        return m
    s = np.linalg.svd(m, compute_uv=False)
    ranks = best_rank(s, spec)
    if spec.skip_if_larger and all(r * sum(m.shape) >= m.size for r in ranks):
        return "rank {} of {} saves nothing".format(ranks[0], min(m.shape))
    return m, s, ranks


def _values(v):
    """What ``v`` holds: a parameter (through Reshapes) read directly, anything else computed."""
    leaf = parameter_source(v)
    if leaf is not None:
        return leaf.d.reshape(v.shape).astype(np.float64)
    nn.forward_all([v], clear_buffer=False)
    return v.d.astype(np.float64)


def split_of(f, g, var_map):
    """``(product of the factors as a matrix, inner rank)`` of converted function ``g`` standing
    for ``f``; ``(its weight as a matrix, None)`` when it was left whole."""
    x = var_map.get(f.inputs[0], f.inputs[0])
    first = g.inputs[0].parent
    if g.inputs[0] is x or first is None or first.info.type_name != f.info.type_name:
        w = _values(g.inputs[1])
        return w.reshape(w.shape[0], -1), None
    a, b = _values(first.inputs[1]), _values(g.inputs[1])
    if f.info.type_name == "Affine":  # x (I) -> A (I, r) -> B (r, O)
        return a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1), a.reshape(a.shape[0], -1).shape[1]
    # Conv_k with B (r, C, k...) then 1x1 with A (O, r): M = A B
    return b.reshape(b.shape[0], -1) @ a.reshape(a.shape[0], -1), a.shape[0]


def _best(m, r):
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vt[:r]


def _judge(f, want, g, var_map, describe):
    """``(problem or None, bound ratio, discarded share, rank used)`` for one layer."""
    if g is None:
        return "{}: the layer is not in the converted graph".format(describe(f)), None, None, None
    got, rank = split_of(f, g, var_map)
    if isinstance(want, str):
        if rank is not None:
            return "{} was split (rank {}) but must stay whole: {}".format(describe(f), rank, want), None, None, rank
        original = _matrix(f)
        if not isinstance(original, str) and not np.array_equal(got, original):
            return "{} stayed whole but its weight changed".format(describe(f)), None, None, None
        return None, None, None, None
    m, s, ranks = want
    if rank is None:
        return "{} stayed whole, although rank {} of {} saves weights".format(describe(f), ranks[0], s.size), \
            None, None, None
    kept = float(np.sum(s[:rank] ** 2) / max(float(np.sum(s ** 2)), 1e-300))
    if rank not in ranks:
        return "{} was split at rank {} (keeping {:.4f} of the energy); the spec asks for rank {}".format(
            describe(f), rank, kept, " or ".join(map(str, ranks))), None, 1 - kept, rank
    slack = REL_SLACK * float(np.linalg.norm(m))
    fro_bound, spec_bound = float(np.sqrt(np.sum(s[rank:] ** 2))), float(s[rank]) if rank < s.size else 0.0
    diff = m - got
    fro, spectral = float(np.linalg.norm(diff)), float(np.linalg.norm(diff, 2))
    ratio = fro / (fro_bound + slack)
    if fro > fro_bound * (1 + 1e-4) + slack or spectral > spec_bound * (1 + 1e-4) + slack:
        return ("{} exceeds the discarded-energy bound of its rank-{} split: ||M - AB||_F = {:.3g} > {:.3g}, "
                "||M - AB||_2 = {:.3g} (s_r = {:.3g})".format(describe(f), rank, fro, fro_bound, spectral, spec_bound),
                ratio, 1 - kept, rank)
    return None, ratio, 1 - kept, rank


def _reference(model, plans, ranks_used, context):
    """Outputs of a fresh copy of ``model`` with each split layer at its best rank-r weight."""
    copy = copy_model(model, context)
    view = GraphView(copy.outputs, copy.params)
    original = GraphView(model.outputs, model.params)
    for i, (f, g) in enumerate(zip(original.functions, view.functions)):
        want = plans.get(f)
        if want is None or isinstance(want, str):
            continue
        m, _, ranks = want
        r = ranks_used.get(f) if ranks_used.get(f) in ranks else ranks[0]
        leaf = parameter_source(g.inputs[1])
        leaf.d = _best(m, r).reshape(leaf.shape)
    with fast_nnabla_imports():
        feed(copy.inputs, copy.input_data)
        nn.forward_all(list(copy.outputs))
    return [o.d.copy() for o in copy.outputs]


def low_rank_check(spec, model, original, conversion, actual, float_reference, tol, noise, context=None):
    """The check of one low-rank conversion (see the module docstring). ``model``: the cached
    model (a fresh copy makes the reference; its functions are in the order of ``original``'s,
    the case's copy that the variable map refers to); ``actual``: the converted outputs."""
    view = GraphView(original.outputs, original.params)
    converted = GraphView(conversion.outputs, conversion.parameters)
    back = {f: g for g, f in origins(view, converted, conversion.var_map).items()}
    plans = {f: p for f, p in ((f, expected_split(f, spec)) for f in view.functions) if p is not None}
    problems, ratios, discarded, used = [], [], [], {}
    for f, want in plans.items():
        problem, ratio, lost, rank = _judge(f, want, back.get(f), conversion.var_map, view.describe)
        used[f] = rank
        if problem:
            problems.append(problem)
        ratios += [ratio] if ratio is not None else []
        discarded += [lost] if lost is not None else []
    cached = GraphView(model.outputs, model.params).functions
    reference = _reference(model, {c: plans[f] for c, f in zip(cached, view.functions) if f in plans},
                           {c: used.get(f) for c, f in zip(cached, view.functions)}, context)
    numeric = numeric_check(actual, reference, tol, noise)
    sqnr = [x for x in (sqnr_db(a, e) for e, a in zip(float_reference, actual)) if x is not None]
    split = sum(1 for r in used.values() if r is not None)
    figures = dict(numeric.figures, low_rank_layers=split, low_rank_bound=max(ratios) if ratios else None,
                   discarded_energy=max(discarded) if discarded else None, sqnr_db=min(sqnr) if sqnr else None)
    head = "{}: {} of {} layer(s) split, errors within the discarded-energy bound (worst {:.4f}); {}".format(
        spec.describe(), split, len(plans), max(ratios) if ratios else 0.0, numeric.summary)
    if numeric.passed and not problems:
        return CheckResult("low_rank", True, head, [], figures)
    summary = problems[0] if problems else "outputs differ from the verifier's rank-r reference: " + \
        numeric.summary.replace("outputs differ: ", "")
    return CheckResult("low_rank", False, summary, (problems[1:] + numeric.details)[:MAX_LINES], figures)
