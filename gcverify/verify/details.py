"""What the HTML report shows of one case beyond its figures: the graphs before and after the
conversion with the changed functions highlighted (DOT text, ``Row.dot_before`` /
``Row.dot_after``) and the per-layer error profile (:mod:`.profile`, ``Row.error_profile``).

A case asks for them only when they are wanted (``--gc-details=all``, implied by
``--gc-html``) or when its row failed, so the default matrix pays nothing for them.

Which functions changed is read from the conversion's variable map: an original function is
*kept* when its output maps to the output of a function of the same type, arguments and
parameter variables in the converted graph; every other original function was removed or
rewritten (red in the "before" picture) and every other converted function is new or
rewritten (green in the "after" picture). A conversion without a variable map (NNabla's
built-ins) highlights the function types whose counts changed instead, and says so.
"""
from converters.graph_view import GraphView

from ..report.graphs import to_dot
from .profile import error_profile

__all__ = ["attach_details", "changed_functions", "REMOVED_COLOR", "ADDED_COLOR"]

REMOVED_COLOR = "#f4b6b6"  # before: removed or rewritten
ADDED_COLOR = "#bfe6bf"    # after: new or rewritten


def _same_function(f, g):
    """``g`` (converted) computes what ``f`` (original) did, with the same parameters."""
    if f.info.type_name != g.info.type_name or f.info.args != g.info.args:
        return False
    if len(f.inputs) != len(g.inputs):
        return False
    # leaves (parameters, graph inputs) must be the very same variables; computed inputs
    # are other functions' outputs, judged there
    return all(a == b for a, b in zip(f.inputs, g.inputs) if a.parent is None)


def changed_functions(before, after, var_map):
    """``(originals removed or rewritten, converted functions new or rewritten, how)`` for
    two GraphViews and the conversion's variable map; ``how`` is empty when the map told."""
    if not var_map:
        counts_before, counts_after = before.histogram(), after.histogram()
        types = {t for t in set(counts_before) | set(counts_after)
                 if counts_before.get(t, 0) != counts_after.get(t, 0)}
        return ([f for f in before if f.info.type_name in types],
                [g for g in after if g.info.type_name in types],
                "no variable map:\nevery function of a type whose count changed")
    kept_before, kept_after = set(), set()
    for f in before:
        w = var_map.get(f.outputs[0])
        g = w.parent if w is not None else None
        if g is not None and g in after and _same_function(f, g):
            kept_before.add(f)
            kept_after.add(g)
    return [f for f in before if f not in kept_before], [g for g in after if g not in kept_after], ""


def _graph_dots(row, original, conversion):
    before = GraphView(original.outputs, original.params)
    after = GraphView(conversion.outputs, conversion.parameters)
    removed, added, how = changed_functions(before, after, conversion.var_map)
    how = "\n" + how if how else ""
    row.dot_before = to_dot(original.outputs, original.params, row.id + " before", removed,
                            REMOVED_COLOR, "{} of {} functions\nremoved or rewritten (red){}".format(
                                len(removed), len(before), how))
    row.dot_after = to_dot(conversion.outputs, conversion.parameters, row.id + " after", added,
                           ADDED_COLOR, "{} of {} functions\nnew or rewritten (green){}".format(
                               len(added), len(after), how))
    return before


def attach_details(row, original, conversion, tol, wanted):
    """Put the highlighted graphs and the error profile of ``conversion`` (of the Model
    ``original``, ``tol`` the case's tolerance) on ``row`` when ``wanted``. Never raises: a
    detail that cannot be had is replaced by a note saying why."""
    if not wanted:
        return
    try:
        view = _graph_dots(row, original, conversion)
    except Exception as e:  # a picture must never hide the verdict it illustrates
        row.profile_note = "no graph pictures: {}: {}".format(type(e).__name__, e)
        return
    row.error_profile, row.profile_note = error_profile(original, conversion, tol, view)
