"""Checks of one conversion, each giving a bounded message with the numbers a person needs.

- numeric: max abs / max rel error, the smallest atol and rtol that would have passed, the
  share and first index of mismatching elements (``Tolerance``: ``|d| <= floor + atol*max|e| + rtol*|e|``);
  on failure :func:`locate_divergence` names the first function whose output diverges;
- layers: the function histogram before and after against the converter's rules;
- speed: both timings (warm-up, device synchronisation, interleaved) and their ratio;
- untouched: the original graph's histogram, its parameter values and the global scope.

Every check returns a :class:`CheckResult`; nothing here raises on a failed check.
"""
import statistics
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import List

import numpy as np
from tabulate import tabulate

from converters.graph_view import GraphView, all_parameters, histogram_diff

__all__ = ["CheckResult", "compare_arrays", "channel_last_shape", "channel_last_perm", "guess_perm",
           "to_original_layout", "numeric_check", "locate_divergence", "layer_check",
           "time_interleaved", "speed_check", "GraphSnapshot", "untouched_check", "wiring_check",
           "MAX_LINES"]

MAX_LINES = 8  # detail lines per check; tables are cut to this many rows too


@dataclass
class CheckResult:
    name: str
    passed: bool
    summary: str
    details: List[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def message(self):
        lines = ["[{}] {}".format(self.name, self.summary)]
        lines += ["    " + d for d in self.details[:MAX_LINES]]
        if len(self.details) > MAX_LINES:
            lines.append("    ... {} more lines".format(len(self.details) - MAX_LINES))
        return "\n".join(lines)


# --- numeric --------------------------------------------------------------------------
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


def compare_arrays(actual, expected, tol, brief=False):
    """Compare one output with its reference under ``tol`` (a registry Tolerance).

    ``brief``: when finite arrays pass, only ``passed``, ``max_abs`` and ``scale`` are
    filled (the fuzzer compares thousands of small graphs); failures get every figure."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    if brief and tol.rms is None and a.shape == e.shape and a.size and np.isfinite(a).all() \
            and np.isfinite(e).all():
        ae, d = np.abs(e), np.abs(a - e)
        scale = float(ae.max())
        if (d <= tol.floor + tol.atol * scale + tol.rtol * ae).all():
            return ArrayDiff(e.shape, True, float(d.max()), scale=scale, size=int(e.size))
    if a.shape != e.shape:
        return ArrayDiff(a.shape, False, size=e.size,
                         problem="shape {} differs from the original's {}".format(a.shape, e.shape))
    both_nan = np.isnan(a) & np.isnan(e)
    d = np.where(both_nan, 0.0, np.abs(a - e))
    d = np.where(np.isnan(d), np.inf, d)  # NaN on one side only is a mismatch
    ae = np.abs(np.where(np.isfinite(e), e, 0.0))
    scale = float(ae.max()) if ae.size else 0.0
    atol_abs = tol.floor + tol.atol * scale
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
                     need_a / scale if scale > 0 else need_a, float(need_r.max()))


def numeric_check(actual, expected, tol):
    """Compare every output; figures hold the worst output's numbers (for reports/baselines)."""
    diffs = [compare_arrays(a, e, tol) for a, e in zip(actual, expected)]
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
    figures = {k: (_finite(v) if isinstance(v, float) else v) for k, v in figures.items()}
    summary = "max abs {:.3g} (max|y| {:.3g}), max rel {:.3g}; tolerance {}".format(
        figures["max_abs_error"], worst.scale, figures["max_rel_error"], tol.describe())
    details = [d.problem for d in diffs if d.problem]
    if not passed:
        summary = "outputs differ: " + summary
        details.append("would pass with atol >= {:.3g}*max|y| (at rtol={:g}) or rtol >= {:.3g} "
                       "(at atol={:g}*max|y|)".format(figures["needed_atol"], tol.rtol,
                                                      figures["needed_rtol"], tol.atol))
        rows = [(i, "x".join(map(str, d.shape)), "{:.3g}".format(d.max_abs), "{:.3g}".format(d.max_rel),
                 "{:.3g}".format(d.rms), "{}/{} ({:.2%})".format(d.mismatches, d.size, d.mismatches / max(d.size, 1)),
                 d.first_index if d.first_index is not None else "-")
                for i, d in enumerate(diffs) if not d.problem][:MAX_LINES - 2]
        if rows:
            details += tabulate(rows, ["out", "shape", "max abs", "max rel", "rel rms", "mismatch",
                                       "first at"], tablefmt="simple").splitlines()
    return CheckResult("numeric", passed, summary, details, figures)


def _finite(x):
    return x if np.isfinite(x) else (None if np.isnan(x) else float("inf"))


def channel_last_shape(shape):
    return tuple(shape[:1]) + tuple(shape[2:]) + tuple(shape[1:2])


def channel_last_perm(ndim):
    """``transpose`` axes moving axis 1 (channels) last: (N, C, H, W) -> (N, H, W, C)."""
    return (0,) + tuple(range(2, ndim)) + (1,)


def guess_perm(shape, original_shape):
    """The layout of a variable of ``shape`` standing for one of ``original_shape``, guessed
    from the shapes alone: ``channel_last_perm`` when ``shape`` is the channel-last form of a
    different ``original_shape``, else None (as is; also when the guess is impossible)."""
    shape, original_shape = tuple(shape), tuple(original_shape)
    if shape != original_shape and len(shape) >= 3 and shape == channel_last_shape(original_shape):
        return channel_last_perm(len(shape))
    return None


def to_original_layout(array, original_shape):
    """``array`` as the original graph lays it out: as is, or back from channel-last."""
    perm = guess_perm(array.shape, original_shape)
    return array if perm is None else np.transpose(array, np.argsort(perm))


def locate_divergence(original, converted, var_map, feed, tol, describe=None):
    """Forward both graphs keeping every intermediate and name the first original function
    (topological order) whose output differs from its counterpart in ``var_map`` beyond ``tol``
    (scaled to that intermediate). Variables map one-to-one, or up to channel-last order.
    When several originals map to one new variable (a folded conv and its BN), only the last
    is compared: it is the one the converted variable stands for. Returns text or None."""
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
            if a.shape != e.shape:
                continue
            diff = compare_arrays(a, e, tol)
            if not diff.passed:
                name = describe(f) if describe else f.info.type_name
                return ("first divergence at {} (output {}): max abs {:.3g} of max|y| {:.3g}, "
                        "{:.1%} of elements beyond tolerance".format(
                            name, "x".join(map(str, e.shape)), diff.max_abs, diff.scale,
                            diff.mismatches / max(diff.size, 1)))
        return "no mapped intermediate diverges ({} compared); the difference arises after them".format(
            len(pairs)) if pairs else None
    finally:
        for x, flag in saved:
            x.persistent = flag


# --- layers ---------------------------------------------------------------------------
def layer_check(before, after, rules):
    """``before``/``after`` are GraphViews; ``rules`` come from the converter's expectations."""
    h0, h1 = before.histogram(), after.histogram()
    results = [rule.check(before.functions, after.functions) for rule in rules]
    passed = all(ok for ok, _ in results)
    removed, added = histogram_diff(h0, h1)
    figures = dict(histogram_before=dict(h0), histogram_after=dict(h1), removed=removed,
                   added=added, functions_before=sum(h0.values()), functions_after=sum(h1.values()))
    summary = "{} -> {} functions".format(figures["functions_before"], figures["functions_after"])
    details = [("ok   " if ok else "FAIL ") + text for ok, text in results]
    if not passed:
        summary = "layer expectations not met: " + next(t for ok, t in results if not ok)
        changed = sorted(set(h0) | set(h1), key=lambda k: -abs(h0.get(k, 0) - h1.get(k, 0)))
        rows = [(k, h0.get(k, 0), h1.get(k, 0)) for k in changed][:MAX_LINES - len(details) - 2]
        details += tabulate(rows, ["function", "before", "after"], tablefmt="simple").splitlines()
    return CheckResult("layers", passed, summary, details, figures)


# --- speed ----------------------------------------------------------------------------
def time_interleaved(run_a, run_b, synchronize=lambda: None, warmup=1, repeats=5,
                     min_sample=0.05):
    """Median seconds per call of ``run_a`` and ``run_b``, alternating which goes first each
    round so that load on a shared machine hits both alike. Fast graphs are called several
    times per sample (at least ``min_sample`` seconds) so timer noise does not dominate."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        run_a(), run_b()
    synchronize()
    per_pair = (time.perf_counter() - t0) / max(warmup, 1)
    loops = max(1, int(min_sample / max(per_pair / 2, 1e-6)))
    times = {run_a: [], run_b: []}
    for i in range(repeats):
        for run in ((run_a, run_b) if i % 2 == 0 else (run_b, run_a)):
            t0 = time.perf_counter()
            for _ in range(loops):
                run()
            synchronize()
            times[run].append((time.perf_counter() - t0) / loops)
    return statistics.median(times[run_a]), statistics.median(times[run_b])


def speed_check(t_original, t_converted, expectation):
    ratio = t_original / t_converted if t_converted > 0 else float("inf")
    need = expectation.min_ratio
    enforced = t_original >= expectation.min_seconds
    passed = need is None or ratio >= need or not enforced
    summary = "original {:.4g} s, converted {:.4g} s: {:.2f}x ({})".format(
        t_original, t_converted, ratio, expectation.describe())
    if not enforced:
        summary += "; not judged: the original runs in under {:g} s".format(expectation.min_seconds)
    if not passed:
        summary = "too slow: " + summary
    return CheckResult("speed", passed, summary, [], dict(
        time_original=t_original, time_converted=t_converted, speed_ratio=ratio,
        speed_judged=enforced))


# --- original untouched ---------------------------------------------------------------
def _checksum(v):
    return zlib.crc32(np.ascontiguousarray(v.d).view(np.uint8).ravel())


@dataclass
class GraphSnapshot:
    histogram: Counter
    parameters: dict  # label -> checksum
    global_scope: dict  # name -> (id, checksum)

    @classmethod
    def take(cls, outputs, params=None):
        view = GraphView(outputs, params or {})
        labels = {}
        for i, (v, name) in enumerate(view.parameters.items()):
            labels[name or "unnamed parameter #{} {}".format(i, v.shape)] = _checksum(v)
        scope = {k: (id(v), _checksum(v)) for k, v in all_parameters().items()}
        return cls(view.histogram(), labels, scope)


def untouched_check(before, after):
    problems = []
    if before.histogram != after.histogram:
        problems.append("the original graph's functions changed: {} -> {}".format(
            dict(before.histogram - after.histogram) or "", dict(after.histogram - before.histogram) or ""))
    changed = [k for k, c in before.parameters.items() if after.parameters.get(k) != c]
    if changed:
        problems.append("{} parameter value(s) of the original changed: {}".format(
            len(changed), ", ".join(changed[:5])))
    added = sorted(set(after.global_scope) - set(before.global_scope))
    gone = sorted(set(before.global_scope) - set(after.global_scope))
    moved = [k for k in before.global_scope if k in after.global_scope
             and after.global_scope[k] != before.global_scope[k]]
    for what, names in (("added to", added), ("removed from", gone), ("changed in", moved)):
        if names:
            problems.append("{} parameter(s) {} the global scope: {}".format(
                len(names), what, ", ".join(names[:5])))
    summary = "original graph, parameters and global scope unchanged" if not problems else \
        "the conversion changed its input: " + problems[0]
    return CheckResult("untouched", not problems, summary, problems[1:], {})


# --- wiring ---------------------------------------------------------------------------
def wiring_check(converted_view, stated_inputs):
    """Every graph input the converted graph reads must be one the conversion tells the user
    to feed. NNabla's ChannelLastModifier hands out ``inputs_cl`` that its graph never reads
    (it reads a copy of the data taken at conversion time), so new data would never arrive."""
    stated = set(stated_inputs)
    hidden = [x for x in converted_view.inputs if x not in stated]
    if not hidden:
        return CheckResult("inputs", True, "the converted graph reads only its stated inputs")
    unread = [i for i, x in enumerate(stated_inputs) if x not in set(converted_view.inputs)]
    details = ["hidden input of shape {}".format(tuple(x.shape)) for x in hidden[:MAX_LINES]]
    if unread:
        details.append("stated input(s) {} are never read".format(unread))
    return CheckResult("inputs", False, "the converted graph reads {} input(s) that the conversion "
                       "does not expose: data fed to its stated inputs would not reach them"
                       .format(len(hidden)), details)
