"""The per-layer error profile: how far each intermediate of the converted graph drifts from
the original's, along the original graph.

For every original function whose output the conversion's variable map links to a variable
of the converted graph (walked by :func:`.numeric.walk_intermediates`), one entry::

    position   the function's place in the original's topological order
    function   its readable name (type and parameter scope), type, output shape
    max_abs_error, scale       max |converted - original| and max |original|
    relative_error             max_abs_error / scale (0: exact)
    sqnr_db    signal-to-quantization-noise ratio 10 log10(sum e^2 / sum (a - e)^2),
               None where the two agree exactly (infinite) or the error is not finite
    within_tolerance           whether it passes the case's tolerance scaled to it

Where a channel-last graph runs on CPU only through the emulation
(:mod:`converters.layout_emulation`), the emulation's own variable map is composed with the
conversion's, so its rows get a profile too. Nothing here raises for a graph it cannot
profile: :func:`error_profile` returns ``(entries or None, note)``.
"""
import math

import numpy as np

from .execution import feed, feed_conversion, has_channel_last, on_cpu
from .numeric import compare_arrays, walk_intermediates

__all__ = ["error_profile", "profile_entry", "sqnr_db"]


def sqnr_db(actual, expected):
    """10 log10(signal energy / error energy) in dB; None when the error is exactly zero."""
    e = np.asarray(expected, np.float64)
    d = np.asarray(actual, np.float64) - e
    noise = float(np.sum(d * d))
    if noise == 0.0:
        return None
    signal = float(np.sum(e * e))
    if not math.isfinite(noise):
        return -math.inf if signal else None
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def _short(x):
    """4 significant digits (enough to plot and read; keeps reports small); None for what
    is not a finite number."""
    return float("{:.4g}".format(x)) if x is not None and math.isfinite(x) else None


def profile_entry(position, name, type_name, actual, expected, tol):
    """One profile entry (see the module docstring) for a pair of intermediates."""
    diff = compare_arrays(actual, expected, tol)
    rel = diff.max_abs / diff.scale if diff.scale else (0.0 if diff.max_abs == 0 else math.inf)
    db = sqnr_db(actual, expected)
    return dict(position=position, function=name, type=type_name,
                shape="x".join(map(str, np.shape(expected))),
                max_abs_error=_short(diff.max_abs), scale=_short(diff.scale),
                relative_error=_short(rel), sqnr_db=_short(db),
                within_tolerance=bool(diff.passed))


def _runnable(conversion):
    """The converted outputs to forward here and the variable map into them: the conversion's
    own, or composed with the CPU emulation's map for a channel-last graph on CPU."""
    if not (on_cpu() and has_channel_last(conversion.outputs)):
        return conversion.outputs, conversion.var_map, None
    from converters.layout_emulation import EmulateChannelLast
    from converters.rewrite import run_passes
    emulated = run_passes([EmulateChannelLast()], conversion.outputs, params=conversion.parameters)
    step = emulated.var_map
    var_map = {k: step.get(v, v) for k, v in conversion.var_map.items()}
    return emulated.outputs, var_map, "channel-last graph profiled through the CPU emulation"


def error_profile(original, conversion, tol, view):
    """``(entries, note)`` for ``original`` (a Model) against ``conversion`` on the model's
    data; ``view``: the original's GraphView (names and positions). ``entries`` is None
    when nothing can be compared, and ``note`` says why (or what was special)."""
    if not conversion.var_map:
        return None, "no per-layer profile: the conversion reports no variable map " \
                     "(NNabla's built-ins do not)"
    try:
        outputs, var_map, note = _runnable(conversion)
    except Exception as e:  # the emulation refuses some functions; say so, do not fail
        return None, "no per-layer profile: cannot run the converted graph here ({}: {})".format(
            type(e).__name__, e)
    entries = []

    def record(f, expected, actual):
        entries.append(profile_entry(view.position(f), view.describe(f), f.info.type_name,
                                     actual, expected, tol))
        return False  # walk every pair

    def feed_both():
        feed(original.inputs, original.input_data)
        feed_conversion(conversion, original.input_data)
    try:
        walk_intermediates(original.outputs, outputs, var_map, feed_both, record)
    except Exception as e:  # a diagnosis must never hide what it explains
        return None, "no per-layer profile: {}: {}".format(type(e).__name__, e)
    if not entries:
        return None, "no per-layer profile: no original intermediate maps to the converted graph"
    return entries, note
