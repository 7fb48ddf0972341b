"""Whether the parameters a conversion creates need a gradient exactly when they should.

A converted graph is often fine-tuned (quantization-aware training after folding, a frozen
backbone under a new head). A conversion that freezes a trainable weight (a folded kernel
created with ``need_grad=False``) or makes a frozen one trainable changes what training
does while every forward stays right, so no numeric check sees it. The rule, judged on every
row for each *new* parameter (a leaf of the converted graph that is no leaf of the original):

- **a value derived from original parameters needs a gradient iff one of them does.** A new
  parameter is a value when it is read in a weight slot (the weight or bias of an
  inner-product layer, a BN's beta or gamma, an Embed table, a PReLU slope; through Reshapes).
  It derives from
  1. the original parameter it is named after: our converters name a new parameter
     ``<original name>/<suffix>`` (``conv/W/bn_folded``, ``conv/W/bn_folded/cl`` after a
     second step), so the longest such prefix naming an original parameter is its source;
  2. the parameters of the original functions its reader absorbed: those whose outputs the
     variable map sends to the reader's outputs (a BN folded into the conv before it: the
     conv' stands for both), and a function that vanished in front of it (its output maps to
     its input's counterpart: a BN folded into the layer after it). A reader that stands for
     nothing (the first layer of a low-rank split) is judged by the first function after it
     that does.
  Without a name to go by, every parameter of the absorbed functions is a source; with no
  source found at all the parameter is counted, not judged.
- **running statistics never need a gradient**: a new parameter read only in a BN's mean/var
  slots. One read only outside parameter slots (a quantizer's scale or step, NNabla's Mul2
  scale of a self-folded BN, a recorder's state) is counted, not judged: whether such a
  value trains is the converter's design (QAT learns its scales).
- A converter that declares freezing (a :class:`~gcverify.core.wiring_rules.NoGradients`
  layer rule) wants every new parameter frozen.

Everything here is read from the two graphs, the parameter names and the variable map, not
from the converters' code.
"""
from converters.graph_view import PARAMETER_SLOTS

from .results import MAX_LINES, CheckResult

__all__ = ["gradients_check", "derived_from", "value_reads"]

_FORWARD_STEPS = 4  # how far past a reader that stands for nothing its counterpart is looked for


def _bn_statistics_slots(f):
    """The input positions of a (Fused)BatchNormalization holding running mean and variance."""
    present = 1 + (not f.info.args.get("no_bias", False)) + (not f.info.args.get("no_scale", False))
    return {present, present + 1}


def _reads(view, v):
    """``(function, slot)`` reading ``v``, following Reshapes of it (a view of the same values)."""
    found, frontier = [], [v]
    while frontier:
        for g, slot in view.consumers(frontier.pop()):
            if g.info.type_name == "Reshape":
                frontier.append(g.outputs[0])
            else:
                found.append((g, slot))
    return found


def value_reads(view, v):
    """``(values, statistics)``: the functions reading ``v`` in a weight slot, and those
    reading it as a BN's running statistics."""
    values, statistics = [], []
    for g, slot in _reads(view, v):
        kind = g.info.type_name
        if slot not in PARAMETER_SLOTS.get(kind, ()):
            continue
        if kind in ("BatchNormalization", "FusedBatchNormalization") and slot in _bn_statistics_slots(g):
            statistics.append(g)
        else:
            values.append(g)
    return values, statistics


def _leaf_params(view, f):
    """The original parameters ``f`` reads (through Reshapes)."""
    found = []
    for v in f.inputs:
        while v.parent is not None and v.parent.info.type_name == "Reshape":
            v = v.parent.inputs[0]
        if v.parent is None and view.is_parameter(v):
            found.append(v)
    return found


class _Origins:
    """Which original functions each converted function stands for, from the variable map."""

    def __init__(self, original_view, converted_view, var_map):
        self.original, self.converted = original_view, converted_view
        self.stands_for = {}
        for f in original_view.functions:
            for o in f.outputs:
                w = var_map.get(o)
                if w is not None and w.parent is not None:
                    self.stands_for.setdefault(w.parent, []).append(f)
        self.vanished = {f for f in original_view.functions
                         if f.inputs and var_map.get(f.outputs[0]) is not None
                         and var_map.get(f.outputs[0]) is var_map.get(f.inputs[0], f.inputs[0])}

    def absorbed_by(self, g):
        """The original functions converted function ``g`` absorbed (see the module docstring)."""
        frontier, seen = [g], set()
        for _ in range(_FORWARD_STEPS):
            hits = [f for h in frontier for f in self.stands_for.get(h, ())]
            if hits:
                break
            seen.update(frontier)
            frontier = [c for h in frontier for o in h.outputs for c, _ in self.converted.consumers(o)
                        if c not in seen]
        else:
            return []
        absorbed = list(dict.fromkeys(hits))
        for f in list(absorbed):
            for v in f.inputs:
                p = v.parent
                if p is not None and p in self.vanished and p not in absorbed:
                    absorbed.append(p)
        return absorbed


def _named_source(name, original_names):
    """The original parameter a new parameter's name says it derives from, or None."""
    parts = (name or "").split("/")
    for k in range(len(parts) - 1, 0, -1):
        source = original_names.get("/".join(parts[:k]))
        if source is not None:
            return source
    return None


def derived_from(p, readers, origins, original_names, name):
    """The original parameters new parameter ``p`` (named ``name``) derives from."""
    named = _named_source(name, original_names)
    sources = [named] if named is not None else []
    for g in readers:
        for f in origins.absorbed_by(g):
            params = _leaf_params(origins.original, f)
            if named is None or named not in params:
                sources += params
    return list(dict.fromkeys(sources))


def gradients_check(original_view, converted_view, conversion, frozen=False):
    """The rule of the module docstring on every new parameter of ``conversion`` (GraphViews of
    the original and the converted graph); ``frozen``: the converter declares that no
    parameter may need a gradient."""
    known = set(original_view.inputs) | set(original_view.parameters)
    names = {v: k for k, v in conversion.parameters.items()}
    # by name, the variables the original graph reads (need_grad is the reader's, not the scope entry's)
    original_params = {original_view.param_name(v): v for v in original_view.parameters
                       if original_view.param_name(v)}
    new = [v for v in converted_view.parameters if v not in known]
    if not new:
        return CheckResult("gradients", True, "no new parameter", figures=dict(new_parameters=0,
                                                                              gradient_mismatches=0))
    origins = _Origins(original_view, converted_view, conversion.var_map or {})
    wrong, unjudged = [], 0
    for p in new:
        readers, statistics = value_reads(converted_view, p)
        name = names.get(p) or converted_view.param_name(p) or "a parameter of shape {}".format(tuple(p.shape))
        if frozen or (statistics and not readers):
            want, why = False, "the converter freezes every parameter" if frozen else \
                "it is read as running statistics"
        elif not readers:
            unjudged += 1
            continue
        else:
            sources = derived_from(p, readers, origins, original_params, names.get(p))
            if not sources:
                unjudged += 1
                continue
            want = any(s.need_grad for s in sources)
            why = "derived from {}".format(", ".join("{} (need_grad={})".format(
                original_view.param_name(s) or tuple(s.shape), s.need_grad) for s in sources[:4]))
        if bool(p.need_grad) != want:
            wrong.append("{} has need_grad={} but should have {}: {}".format(name, p.need_grad, want, why))
    figures = dict(new_parameters=len(new), gradient_mismatches=len(wrong))
    judged = len(new) - unjudged
    if not wrong:
        return CheckResult("gradients", True, "{} new parameter(s): need_grad right on {}{}".format(
            len(new), judged, ", {} not judged (no weight slot or no known source)".format(unjudged) if unjudged else ""),
            figures=figures)
    return CheckResult("gradients", False, "need_grad of a new parameter is wrong: " + wrong[0],
                       wrong[1:MAX_LINES], figures)
