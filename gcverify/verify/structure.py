"""Structural checks of a conversion: the layer rules of its converter and the wiring of
the converted graph (it must read only what it tells the user to feed)."""
from tabulate import tabulate

from converters.graph_view import histogram_diff

from .results import MAX_LINES, CheckResult

__all__ = ["layer_check", "wiring_check"]


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
