"""A row's figures in words, for people who read the HTML report rather than the table:
what the verdict was, how far the numbers moved against the tolerance, which layers changed,
how long it took, and what the per-layer profile says."""

__all__ = ["explain", "profile_summary"]

_VERDICTS = {
    "passed": "Passed: every check held.",
    "failed": "Failed: {message}",
    "xfailed": "Expected failure (NNabla's built-in converter, run as a peer): {message}",
    "xpassed": "NNabla's built-in passed where it was expected to fail.",
    "skipped": "Skipped: {message}",
    "crashed": "Crashed: {message}",
    "error": "Error while setting up the case: {message}",
}


def _g(x):
    return "{:.3g}".format(x)


def _counts(d):
    return ", ".join("{} {}".format(n, t) for t, n in sorted(d.items()))


def _numbers(r):
    if r.max_abs_error is None:
        return []
    if r.max_abs_error == 0:
        return ["The converted graph's outputs are bit-for-bit equal to the original's "
                "(tolerance {}).".format(r.tolerance or "-")]
    lines = ["The converted graph's outputs differ from the original's by at most {} where the "
             "largest output magnitude is {}: {} of the output scale, and at most {} relative to "
             "the element itself.".format(_g(r.max_abs_error), _g(r.error_scale or 0),
                                          _g(r.normalized_error or 0), _g(r.max_rel_error or 0))]
    if r.rms_error is not None:
        lines.append("The error's root mean square is {} of the outputs' RMS.".format(_g(r.rms_error)))
    if r.elements:
        lines.append("The tolerance ({}{}) lets each element differ by a floor plus atol times "
                     "the largest magnitude plus rtol times its own; {} of {} elements lie beyond "
                     "it.".format(r.tolerance_preset + ": " if r.tolerance_preset else "",
                                  r.tolerance or "-", r.mismatches or 0, r.elements))
    if r.needed_atol is not None and r.needed_rtol is not None:
        lines.append("The smallest tolerances that would pass: atol >= {} x max|y|, or rtol >= "
                     "{}.".format(_g(r.needed_atol), _g(r.needed_rtol)))
    return lines


def _layers(r):
    if r.functions_before is None:
        return []
    if r.functions_after is None:
        return ["The original graph has {} functions; the conversion produced no graph.".format(
            r.functions_before)]
    line = "{} functions before the conversion, {} after".format(r.functions_before, r.functions_after)
    changes = []
    if r.removed:
        changes.append("removed " + _counts(r.removed))
    if r.added:
        changes.append("added " + _counts(r.added))
    return [line + (": " + "; ".join(changes) if changes else ", same types and counts") + "."]


def _times(r):
    lines = []
    if r.conversion_time is not None:
        lines.append("The conversion took {:.1f} ms.".format(r.conversion_time * 1000))
    if r.speed_ratio is not None:
        judged = ("judged against the converter's speed expectation" if r.speed_judged is not False
                  else "not judged: the graphs run too fast to time reliably")
        lines.append("The converted graph runs {:.2f}x as fast as the original ({}; {:.3g} s vs "
                     "{:.3g} s per forward).".format(r.speed_ratio, judged, r.time_converted or 0,
                                                     r.time_original or 0))
    if r.speed_note:
        lines.append("Speed: " + r.speed_note)
    return lines


def profile_summary(r):
    """Sentences about ``r.error_profile``: where the intermediates drift, the worst layer,
    for quantizers the lowest SQNR; or why there is no profile."""
    entries = r.error_profile
    if not entries:
        return [r.profile_note] if r.profile_note else []
    lines = []
    beyond = [e for e in entries if not e["within_tolerance"]]
    if beyond:
        first = beyond[0]
        lines.append("{} of {} mapped intermediates lie beyond the tolerance; the first is {} at "
                     "position {} (relative error {}).".format(
                         len(beyond), len(entries), first["function"], first["position"],
                         "not finite" if first["relative_error"] is None else _g(first["relative_error"])))
    else:
        lines.append("All {} mapped intermediates lie within the tolerance.".format(len(entries)))
    finite = [e for e in entries if e["relative_error"]]
    if finite:
        worst = max(finite, key=lambda e: e["relative_error"])
        lines.append("The largest relative error, {}, is at {} (position {}, output {}).".format(
            _g(worst["relative_error"]), worst["function"], worst["position"], worst["shape"]))
    elif not beyond:
        lines.append("Every mapped intermediate equals the original's exactly.")
    sqnr = [e for e in entries if e.get("sqnr_db") is not None]
    if r.quantizer and sqnr:
        low = min(sqnr, key=lambda e: e["sqnr_db"])
        lines.append("The lowest SQNR is {:.1f} dB at {} (position {}): the layer whose "
                     "quantization costs the most.".format(low["sqnr_db"], low["function"], low["position"]))
    if r.profile_note:
        lines.append("Note: " + r.profile_note)
    return lines


def explain(r):
    """The row ``r`` in sentences (a list of strings)."""
    verdict = _VERDICTS.get(r.outcome or "", "Outcome: {}.".format(r.outcome or "unknown"))
    lines = [verdict.format(message=r.message or "no message recorded")]
    lines += _numbers(r) + _layers(r) + _times(r)
    if r.baseline:
        lines.append("Baseline: " + r.baseline + ".")
    return lines
