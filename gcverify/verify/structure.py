"""Structural checks of a conversion: its converter's layer rules (with every kept function
judged), how much it changed, the wiring of the converted graph and its random functions.

- :func:`layer_check`: each rule of the converter; for :class:`~gcverify.core.expectations.Removes`
  every function of that kind still in the converted graph must be a *valid keep*: the
  converter reported keeping it with a reason, and the verifier's own rule finds a reason
  too (or the model accepts the keep). A keep the verifier finds no reason for, or a
  function left without any reported reason, fails with what was kept and why.
- :func:`changed_functions`: how many of the original's functions the conversion changed or
  removed, and how many it added (a conversion that changes nothing is visible).
- :func:`wiring_check`: every leaf the converted graph reads is an input it tells the user
  to feed, a parameter, or a constant of the original; anything else is data the user
  could never feed (NNabla's ChannelLastModifier reads a copy of the input taken at
  conversion time).
- :func:`random_functions_check`: random functions (any with a ``seed``) are kept with
  their seeds, so the two graphs draw the same numbers.
"""
from collections import Counter

from tabulate import tabulate

from converters.graph_view import histogram_diff

from ..core.expectations import Removes
from .results import MAX_LINES, CheckResult

__all__ = ["layer_check", "judge_kept", "changed_functions", "wiring_check", "random_signature",
           "random_functions_check", "origins"]


def origins(original_view, converted_view, var_map):
    """``{converted function: original function}`` for converted functions whose output
    stands for an original function's output of the same type (``var_map``)."""
    back = {}
    for f in original_view.functions:
        for v in f.outputs:
            w = var_map.get(v)
            if w is not None and w.parent is not None:
                back.setdefault(w.parent, f)
    return {g: f for g, f in back.items() if g in converted_view and g.info.type_name == f.info.type_name}


def _reported_later(reported, name):
    """The reason reported for ``name`` by a later step of a chain, which names the function
    after its parameters as the earlier step renamed them (``BatchNormalization 'bn/beta'``
    for the original ``BatchNormalization 'bn'`` once a layout step made ``bn/beta/cl``)."""
    if not name.endswith("'"):
        return None
    prefix = name[:-1] + "/"
    return next((reason for said, reason in reported.items() if said.startswith(prefix)), None)


def judge_kept(rule, original_view, converted_view, conversion, accepts):
    """Each function ``rule.what`` matches in the converted graph, judged: ``(ok, line)``.

    ``accepts(type_name, description)``: whether the model accepts this keep."""
    reported = {e.function: e.reason for e in (conversion.events if conversion else ())
                if getattr(e, "action", None) == "kept"}
    back = origins(original_view, converted_view, conversion.var_map if conversion else {})
    judged = []
    for g in converted_view.functions:
        if not rule.what.matches(g):
            continue
        f = back.get(g)
        name = original_view.describe(f) if f is not None else converted_view.describe(g)
        said = reported.get(name) or (_reported_later(reported, name) if f is not None else None)
        valid = rule.may_keep(original_view, f) if rule.may_keep and f is not None else None
        if accepts(g.info.type_name, name):
            judged.append((True, "kept {}: {} (accepted by the model)".format(name, said or "no reason given")))
        elif said is None:
            judged.append((False, "{} left without a reason ({})".format(
                name, "a valid one exists: " + valid if valid else "the verifier finds nothing that stops converting it")))
        elif valid:
            judged.append((True, "kept {}: {} (valid: {})".format(name, said, valid)))
        else:
            judged.append((False, "kept {}: {!r}, but the verifier finds nothing that stops converting "
                                  "it{}".format(name, said, "" if rule.may_keep else
                                                " (no rule knows this keep: a model may accept it)")))
    return judged


def layer_check(before, after, rules, conversion=None, accepts=lambda type_name, description: False):
    """``before``/``after`` are GraphViews of the original and converted graphs; ``rules`` come
    from the converter's expectations; kept functions are judged (:func:`judge_kept`)."""
    h0, h1 = before.histogram(), after.histogram()
    results, kept, wrong = [], [], []
    for rule in rules:
        if isinstance(rule, Removes):
            judged = judge_kept(rule, before, after, conversion, accepts)
            kept += [line for ok, line in judged]
            bad = [line for ok, line in judged if not ok]
            wrong += bad
            n0, n1 = rule.what.count(before.functions), rule.what.count(after.functions)
            text = "{}: {} -> {}".format(rule.what, n0, n1)
            text += " ({} kept, every keep valid)".format(n1) if n1 and not bad else \
                " ({} left that should be gone)".format(len(bad)) if bad else " (all removed)"
            results.append((not bad, text))
        else:
            results.append(rule.check(before.functions, after.functions))
    passed = all(ok for ok, _ in results)
    removed, added = histogram_diff(h0, h1)
    figures = dict(histogram_before=dict(h0), histogram_after=dict(h1), removed=removed,
                   added=added, functions_before=sum(h0.values()), functions_after=sum(h1.values()),
                   kept=kept or None)
    summary = "{} -> {} functions".format(figures["functions_before"], figures["functions_after"])
    details = [("ok   " if ok else "FAIL ") + text for ok, text in results]
    if not passed:
        summary = "layer expectations not met: " + next(t for ok, t in results if not ok)
        details += wrong[:MAX_LINES // 2]
        changed = sorted(set(h0) | set(h1), key=lambda k: -abs(h0.get(k, 0) - h1.get(k, 0)))
        rows = [(k, h0.get(k, 0), h1.get(k, 0)) for k in changed][:max(MAX_LINES - len(details) - 2, 2)]
        details += tabulate(rows, ["function", "before", "after"], tablefmt="simple").splitlines()
    return CheckResult("layers", passed, summary, details, figures)


def _signatures(view):
    return Counter((f.info.type_name, repr(sorted(f.info.args.items()))) for f in view.functions)


def changed_functions(before, after, var_map=None):
    """``(changed, added)``: functions of the original that the conversion altered or removed,
    and functions of the converted graph that are no unchanged copy of one. With a variable
    map a function is unchanged when the function computing its output's counterpart has
    its type and arguments and reads the same leaves (weights); without one, functions are
    matched by type and arguments alone."""
    if not var_map:
        s0, s1 = _signatures(before), _signatures(after)
        return sum((s0 - s1).values()), sum((s1 - s0).values())
    unchanged = sum(1 for f in before.functions if _copied(f, var_map, after))
    return len(before) - unchanged, len(after) - unchanged


def _copied(f, var_map, after):
    w = var_map.get(f.outputs[0])
    g = w.parent if w is not None else None
    if g is None or g not in after or g.info.type_name != f.info.type_name or g.info.args != f.info.args:
        return False
    return all(v.parent is not None or u == v for v, u in zip(f.inputs, g.inputs))  # == : same variable


def wiring_check(converted_view, stated_inputs, original_leaves=()):
    """Every leaf the converted graph reads that is no parameter (named, or in a weight slot)
    and no leaf of the original (its constants and parameters, which conversions share) must
    be one of the inputs the conversion tells the user to feed."""
    stated, known = set(stated_inputs), set(original_leaves)
    hidden = [x for x in converted_view.inputs if x not in stated and x not in known]
    if not hidden:
        return CheckResult("inputs", True, "the converted graph reads only its stated inputs, "
                           "parameters and the original's constants")
    unread = [i for i, x in enumerate(stated_inputs) if x not in set(converted_view.inputs)]
    details = ["leaf of shape {} read by {}".format(tuple(x.shape), converted_view.describe(
        converted_view.consumers(x)[0][0]) if converted_view.consumers(x) else "an output")
        for x in hidden[:MAX_LINES]]
    if unread:
        details.append("stated input(s) {} are never read".format(unread))
    return CheckResult("inputs", False, "the converted graph reads {} leaf variable(s) that are neither "
                       "inputs it exposes, nor parameters, nor constants of the original: data fed to "
                       "its stated inputs would not reach them".format(len(hidden)), details)


def random_signature(view):
    """The random functions of a graph (those with a ``seed`` argument), as a Counter of
    ``(type, seed, other arguments)``."""
    return Counter((f.info.type_name, f.info.args.get("seed"),
                    repr(sorted((k, v) for k, v in f.info.args.items() if k != "seed")))
                   for f in view.functions if "seed" in f.info.args)


def random_functions_check(before, after):
    """The converted graph draws with the same random functions and seeds as the original."""
    r0, r1 = random_signature(before), random_signature(after)
    if r0 == r1:
        return CheckResult("random", True, "{} random function(s) kept with their seeds".format(sum(r0.values())))
    lost = ["{} seed={}".format(t, s) for (t, s, _), n in (r0 - r1).items() for _ in range(n)]
    new = ["{} seed={}".format(t, s) for (t, s, _), n in (r1 - r0).items() for _ in range(n)]
    return CheckResult("random", False, "the conversion changed the graph's random functions: the two "
                       "graphs no longer draw the same numbers", (["gone: " + ", ".join(lost)] if lost else [])
                       + (["new: " + ", ".join(new)] if new else []))
