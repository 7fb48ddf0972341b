"""Numeric checks: the converted graph's outputs against the original's.

- :func:`compare_arrays` / :func:`numeric_check`: max abs / max rel error, the error as a
  multiple of the output's float32 noise floor (:mod:`.noise_floor`), the tolerance that
  would have passed, the share and first index of mismatching elements (``Tolerance``:
  ``|d| <= floor + noise * noise_floor + atol*max|e| + rtol*|e|``);
- :func:`walk_intermediates`: both graphs' intermediates side by side, through the
  conversion's variable map; :func:`locate_divergence` uses it on failure to name the first
  function whose output diverges (and :mod:`.profile` for the per-layer error profile).

Nothing here raises on a failed check.
"""
from dataclasses import dataclass

import numpy as np
from tabulate import tabulate

from converters.graph_view import GraphView

from ..core.layouts import guess_perm
from .results import MAX_LINES, CheckResult

__all__ = ["ArrayDiff", "compare_arrays", "numeric_check", "walk_intermediates", "locate_divergence",
           "to_original_layout"]


@dataclass
class ArrayDiff:
    shape: tuple
    passed: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    scale: float = 0.0
    rms: float = 0.0
    mismatches: int = 0
    size: int = 0
    first_index: tuple = None
    needed_atol: float = 0.0  # in units of scale, at the given rtol
    needed_rtol: float = 0.0  # at the given atol
    problem: str = ""
    noise: float = None  # the output's float32 noise floor (absolute), when measured
    noise_multiple: float = None  # max abs error / noise floor
    rms_only: bool = False  # every element within tolerance: only the RMS limit failed


def _allowed(tol, scale, noise):
    """The absolute error every element may have, before ``rtol * |e|``."""
    if tol.noise is not None and noise is None:
        raise ValueError("tolerance {!r} is a multiple of the noise floor: measure the floor "
                         "(gcverify.verify.noise_floor) and pass it".format(tol.name or tol.describe()))
    return tol.floor + tol.atol * scale + (tol.noise * noise if tol.noise is not None else 0.0)


def compare_arrays(actual, expected, tol, brief=False, noise=None):
    """Compare one output with its reference under ``tol`` (a Tolerance); ``noise``: the
    output's float32 noise floor (absolute), needed when ``tol`` is a multiple of it.

    ``brief``: when finite arrays pass, only ``passed``, ``max_abs`` and ``scale`` are
    filled (the fuzzer compares thousands of small graphs); failures get every figure."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    if brief and tol.rms is None and a.shape == e.shape and a.size and np.isfinite(a).all() \
            and np.isfinite(e).all():
        ae, d = np.abs(e), np.abs(a - e)
        scale = float(ae.max())
        if (d <= _allowed(tol, scale, noise) + tol.rtol * ae).all():
            return ArrayDiff(e.shape, True, float(d.max()), scale=scale, size=int(e.size), noise=noise,
                             noise_multiple=_multiple(float(d.max()), noise))
    if a.shape != e.shape:
        return ArrayDiff(a.shape, False, size=e.size,
                         problem="shape {} differs from the original's {}".format(a.shape, e.shape))
    same = (a == e) | (np.isnan(a) & np.isnan(e))  # equal infinities and NaN on both sides agree
    with np.errstate(invalid="ignore"):
        d = np.where(same, 0.0, np.abs(a - e))
    d = np.where(np.isnan(d), np.inf, d)  # NaN on one side only is a mismatch
    ae = np.abs(np.where(np.isfinite(e), e, 0.0))
    scale = float(ae.max()) if ae.size else 0.0
    atol_abs = _allowed(tol, scale, noise)
    bad = d > atol_abs + tol.rtol * ae
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(ae > 0, d / ae, np.where(d > 0, np.inf, 0.0))
        need_r = np.where(d > atol_abs, (d - atol_abs) / ae, 0.0)
    need_r = np.where(np.isnan(need_r), np.inf, need_r)
    energy = float(np.mean(ae ** 2)) if ae.size else 0.0
    rms = float(np.sqrt(np.mean(np.minimum(d, 1e150) ** 2) / energy)) if energy > 0 else (
        0.0 if not d.any() else float("inf"))
    passed = not bad.any() and (tol.rms is None or rms <= tol.rms)
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)) if bad.any() else None
    if not d.size:
        return ArrayDiff(e.shape, passed, size=0)
    need_a = float(max(0.0, (d - tol.floor - tol.rtol * ae).max()))
    return ArrayDiff(e.shape, passed, float(d.max()), float(rel.max()), scale, rms,
                     int(bad.sum()), int(e.size), first,
                     need_a / scale if scale > 0 else need_a, float(need_r.max()), noise=noise,
                     noise_multiple=_multiple(float(d.max()), noise), rms_only=not passed and not bad.any())


def _multiple(error, noise):
    if noise is None:
        return None
    return error / noise if noise > 0 else (0.0 if error == 0 else float("inf"))


def numeric_check(actual, expected, tol, noise=None):
    """Compare every output (``noise``: their float32 noise floors); figures hold the worst
    output's numbers (for reports and baselines)."""
    noise = list(noise) if noise is not None else [None] * len(expected)
    diffs = [compare_arrays(a, e, tol, noise=n) for a, e, n in zip(actual, expected, noise)]
    if len(actual) != len(expected):
        diffs.append(ArrayDiff((), False, problem="{} outputs, the original has {}".format(
            len(actual), len(expected))))
    passed = all(d.passed for d in diffs)
    worst = max(diffs, key=lambda d: (d.max_abs / d.scale) if d.scale else d.max_abs)
    figures = dict(max_abs_error=max(d.max_abs for d in diffs), max_rel_error=max(d.max_rel for d in diffs),
                   error_scale=worst.scale, normalized_error=(worst.max_abs / worst.scale) if worst.scale else worst.max_abs,
                   rms_error=max(d.rms for d in diffs), mismatches=sum(d.mismatches for d in diffs),
                   elements=sum(d.size for d in diffs), needed_atol=max(d.needed_atol for d in diffs),
                   needed_rtol=max(d.needed_rtol for d in diffs), tolerance=tol.describe())
    multiples = [d.noise_multiple for d in diffs if d.noise_multiple is not None]
    if multiples:
        noisiest = max((d for d in diffs if d.noise_multiple is not None), key=lambda d: d.noise_multiple)
        figures.update(noise_multiple=max(multiples),
                       noise_floor=noisiest.noise / noisiest.scale if noisiest.scale else noisiest.noise)
    figures = {k: (_finite(v) if isinstance(v, float) else v) for k, v in figures.items()}
    summary = "max abs {:.3g} (max|y| {:.3g}), max rel {:.3g}{}; tolerance {}".format(
        figures["max_abs_error"], worst.scale, figures["max_rel_error"],
        ", error = {:.3g}x the noise floor".format(figures["noise_multiple"]) if multiples else "",
        tol.describe())
    details = ["output {}: {}".format(i, d.problem) for i, d in enumerate(diffs) if d.problem]
    if not passed:
        # outputs that cannot be compared come first: their "max abs 0" would read as a pass
        summary = "outputs differ: " + "; ".join(details[:1] + [summary])
        details.append(_would_pass(diffs, tol, figures))
        rows = [(i, "x".join(map(str, d.shape)), "{:.3g}".format(d.max_abs), "{:.3g}".format(d.max_rel),
                 "{:.3g}".format(d.rms), "{}/{} ({:.2%})".format(d.mismatches, d.size, d.mismatches / max(d.size, 1)),
                 d.first_index if d.first_index is not None else "-")
                for i, d in enumerate(diffs) if not d.problem][:MAX_LINES - 2]
        if rows:
            details += tabulate(rows, ["out", "shape", "max abs", "max rel", "rel rms", "mismatch",
                                       "first at"], tablefmt="simple").splitlines()
    return CheckResult("numeric", passed, summary, details, figures)


def _would_pass(diffs, tol, figures):
    """The hint after a failure: the tolerance that would have passed, in the terms of ``tol``."""
    comparable = [d for d in diffs if not d.problem and not d.passed]
    if not comparable:  # only outputs that cannot be compared (shape, count): no tolerance helps
        return "no tolerance would pass: the outputs above cannot be compared element by element"
    if all(d.rms_only for d in comparable):
        worst = max(d.rms for d in comparable)
        return "every element is within tolerance; only the relative RMS {:.3g} exceeds its limit {:g}".format(
            worst, tol.rms)
    if tol.noise is not None:
        return "would pass at {:.3g}x the noise floor (the limit is {:g}x)".format(
            figures.get("noise_multiple") or 0.0, tol.noise)
    return "would pass with atol >= {:.3g}*max|y| (at rtol={:g}) or rtol >= {:.3g} (at atol={:g}*max|y|)".format(
        figures["needed_atol"], tol.rtol, figures["needed_rtol"], tol.atol)


def _finite(x):
    return x if np.isfinite(x) else (None if np.isnan(x) else float("inf"))


def to_original_layout(array, original_shape):
    """``array`` as the original graph lays it out: as is, or back from channel-last."""
    perm = guess_perm(array.shape, original_shape)
    return array if perm is None else np.transpose(array, np.argsort(perm))


def walk_intermediates(original, converted, var_map, feed, visit):
    """Forward both graphs keeping every intermediate and call ``visit(f, expected, actual)``
    for each original function ``f`` (topological order) whose output has a counterpart in
    ``var_map`` (one-to-one, or up to channel-last order: ``actual`` is given in the
    original's layout and shape); a true return value stops the walk. When several
    originals map to one new variable (a folded conv and its BN), only the last is visited:
    it is the one the converted variable stands for. Returns how many pairs there were."""
    import nnabla as nn
    view, new_view = GraphView(original), GraphView(converted)
    reachable = {v for f in new_view.functions for v in f.outputs}
    owner = {}
    for f in view.functions:
        for v in f.outputs:
            w = var_map.get(v)
            if w is not None and w in reachable:
                owner[w] = (f, v)
    pairs = [(f, v, w) for w, (f, v) in owner.items()]
    pairs.sort(key=lambda p: view.position(p[0]))
    saved = [(x, x.persistent) for _, v, w in pairs for x in (v, w)]
    try:
        for x, _ in saved:
            x.persistent = True
        feed()
        nn.forward_all(list(original), clear_buffer=False)
        nn.forward_all(list(converted), clear_buffer=False)
        for f, v, w in pairs:
            e = v.d.copy()
            a = to_original_layout(w.d.copy(), e.shape)
            if a.shape == e.shape and visit(f, e, a):
                break
        return len(pairs)
    finally:
        for x, flag in saved:
            x.persistent = flag


def locate_divergence(original, converted, var_map, feed, tol, describe=None):
    """Name the first original function (topological order) whose output differs from its
    counterpart in ``var_map`` beyond ``tol`` (scaled to that intermediate), walking with
    :func:`walk_intermediates`. Returns text or None."""
    found = []

    def first_beyond(f, e, a):
        diff = compare_arrays(a, e, tol)
        if not diff.passed:
            name = describe(f) if describe else f.info.type_name
            found.append("first divergence at {} (output {}): max abs {:.3g} of max|y| {:.3g}, "
                         "{:.1%} of elements beyond tolerance".format(
                             name, "x".join(map(str, e.shape)), diff.max_abs, diff.scale,
                             diff.mismatches / max(diff.size, 1)))
        return bool(found)
    compared = walk_intermediates(original, converted, var_map, feed, first_beyond)
    if found:
        return found[0]
    return "no mapped intermediate diverges ({} compared); the difference arises after them".format(
        compared) if compared else None
