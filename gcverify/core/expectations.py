"""What a conversion must achieve, as data: numeric tolerances, layer rules, speed.

A :class:`~gcverify.core.registry.ConverterSpec` carries these; the verify layer judges a
conversion against them. Nothing here runs a graph: layer rules look at NNabla function
objects through ``f.info`` only.
"""
from collections import Counter
from dataclasses import dataclass, replace
from typing import Optional, Tuple

__all__ = ["Tolerance", "TOLERANCES", "Functions", "Removes", "Adds", "Unchanged", "Speed", "VOLTA",
           "Fuses", "NoGradients", "HasBias", "SharesParameters", "Records", "QuantizesInputs",
           "RECORDERS", "INNER_PRODUCT"]

VOLTA = (7, 0)  # the first compute capability with TensorCores (NHWC half-precision kernels)


@dataclass(frozen=True)
class Tolerance:
    """Element ``i`` passes when ``|a_i - e_i| <= floor + atol * scale + rtol * |e_i|``.

    ``scale`` is ``max |e|`` over the output, so ``atol`` is relative to the output's
    magnitude (ResNet-50 outputs reach 1e3; float32 rounding grows with them); ``floor`` is
    an absolute error always allowed (outputs near zero that are sums of large terms). With ``rms``
    set, the relative RMS error ``sqrt(mean(d^2) / mean(e^2))`` must also stay below it
    (an error statistic, for quantizers whose every element moves a little).
    """

    rtol: float = 1e-4
    atol: float = 1e-5
    rms: Optional[float] = None
    name: str = ""
    floor: float = 0.0

    def merged(self, overrides):
        """A copy with ``{"rtol": .., "atol": .., "rms": .., "floor": ..}`` or ``{"preset": "float16"}``.
        A preset changed by overrides is named with a ``*`` (``float32*``)."""
        overrides = dict(overrides or {})
        base = TOLERANCES[overrides.pop("preset")] if "preset" in overrides else self
        unknown = sorted(set(overrides) - {"rtol", "atol", "rms", "floor"})
        if unknown:
            raise ValueError("unknown tolerance key(s) {}; use rtol, atol, rms, floor or preset".format(
                ", ".join(unknown)))
        if not overrides:
            return base
        return replace(base, name=base.name + "*" if base.name else "", **overrides)

    @property
    def exact(self):
        return self.rtol == 0 and self.atol == 0 and self.rms is None and self.floor == 0

    def describe(self):
        if self.exact:
            return "exact"
        text = "rtol={:g} atol={:g}*max|y|".format(self.rtol, self.atol)
        text += " floor={:g}".format(self.floor) if self.floor else ""
        return text + (" rms<={:g}".format(self.rms) if self.rms is not None else "")


TOLERANCES = {
    "exact": Tolerance(0.0, 0.0, name="exact"),
    "float32": Tolerance(1e-4, 1e-5, name="float32"),
    "float16": Tolerance(1e-2, 2e-3, name="float16"),
    # 8-bit weights + 16-bit activations measure ~5-7% relative RMS on LeNet and ResNet-50.
    "quantizer": Tolerance(0.0, 0.2, rms=0.1, name="quantizer"),
}


def as_tolerance(tolerance, default="float32"):
    """A Tolerance from a Tolerance, a preset name, a dict of overrides of ``default``, or None."""
    if tolerance is None:
        return TOLERANCES[default]
    if isinstance(tolerance, Tolerance):
        return tolerance
    if isinstance(tolerance, str):
        try:
            return TOLERANCES[tolerance]
        except KeyError:
            raise ValueError("unknown tolerance preset {!r}; presets: {}".format(
                tolerance, ", ".join(TOLERANCES))) from None
    if isinstance(tolerance, dict):
        return TOLERANCES[default].merged(tolerance)
    raise TypeError("a tolerance is a Tolerance, a preset name ({}) or a dict of overrides, not "
                    "{!r}".format(", ".join(TOLERANCES), tolerance))


@dataclass(frozen=True)
class Functions:
    """Functions of one type, optionally only those whose arguments include ``args``."""

    type_name: str
    args: Tuple[Tuple[str, object], ...] = ()

    @classmethod
    def of(cls, type_name, **args):
        return cls(type_name, tuple(sorted(args.items())))

    def matches(self, f):
        if f.info.type_name != self.type_name:
            return False
        given = f.info.args
        return all(_same(given.get(k), v) for k, v in self.args)

    def count(self, functions):
        return sum(1 for f in functions if self.matches(f))

    def __str__(self):
        if not self.args:
            return self.type_name
        return "{}({})".format(self.type_name, ", ".join("{}={}".format(k, v) for k, v in self.args))


def _same(a, b):
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return a is not None and b is not None and list(a) == list(b)
    return a == b


@dataclass(frozen=True)
class Removes:
    """Every function matching ``what`` is gone after the conversion (0 left)."""

    what: Functions

    def check(self, before, after):
        n0, n1 = self.what.count(before), self.what.count(after)
        return n1 == 0, "{}: {} -> {} (expected all {} removed, 0 left)".format(self.what, n0, n1, n0)


@dataclass(frozen=True)
class Adds:
    """At least ``at_least`` functions matching one of ``any_of`` appear after the conversion."""

    any_of: Tuple[Functions, ...]
    at_least: int = 1

    def check(self, before, after):
        n0 = sum(w.count(before) for w in self.any_of)
        n1 = sum(w.count(after) for w in self.any_of)
        names = " or ".join(str(w) for w in self.any_of)
        return n1 - n0 >= self.at_least, "{}: {} -> {} (expected at least {} added)".format(
            names, n0, n1, self.at_least)


@dataclass(frozen=True)
class Unchanged:
    """The function histogram is the same before and after (identity, round trips), apart
    from the types in ``except_types`` (which other rules judge)."""

    except_types: Tuple[str, ...] = ()

    def check(self, before, after):
        h0 = Counter(f.info.type_name for f in before if f.info.type_name not in self.except_types)
        h1 = Counter(f.info.type_name for f in after if f.info.type_name not in self.except_types)
        but = " apart from {}".format("/".join(self.except_types)) if self.except_types else ""
        if h0 == h1:
            return True, "histogram unchanged{} ({} functions)".format(but, sum(h0.values()))
        diff = ", ".join("{} {}->{}".format(k, h0.get(k, 0), h1.get(k, 0))
                         for k in sorted(set(h0) | set(h1)) if h0.get(k, 0) != h1.get(k, 0))
        return False, "histogram changed (expected unchanged{}): {}".format(but, diff)


# --- rules on the wiring (what reads what), for the graph-edit modifiers -------------------
INNER_PRODUCT = ("Convolution", "Deconvolution", "DepthwiseConvolution", "DepthwiseDeconvolution",
                 "Affine")
# NNabla's QAT recorders (nnabla.utils.qnn): identity functions that keep a tensor's range
RECORDERS = ("MinMaxMinMaxRecorder", "MinMaxMvaRecorder", "AbsMaxRecorder", "MaxMaxRecorder",
             "MaxMvaRecorder")


def _readers(functions):
    """variable -> the functions (of ``functions``) reading it, in order."""
    readers = {}
    for f in functions:
        for v in f.inputs:
            readers.setdefault(v, []).append(f)
    return readers


def _kind(v):
    return v.parent.info.type_name if v.parent is not None else None


def _parameters(functions):
    """The distinct leaves read in a parameter slot (weights, biases, BN statistics...: the
    slots of ``converters.graph_view.PARAMETER_SLOTS``)."""
    from converters.graph_view import PARAMETER_SLOTS  # on use: this module loads without nnabla
    return list({v: None for f in functions for i, v in enumerate(f.inputs)
                 if v.parent is None and i in PARAMETER_SLOTS.get(f.info.type_name, ())})


def _counts(functions, types):
    h = Counter(f.info.type_name for f in functions)
    return [h.get(t, 0) for t in types]


@dataclass(frozen=True)
class Fuses:
    """Each chain ``chain[0] -> ... -> chain[-1]`` of the original (every output but the last
    read by the next function alone, which reads operands of one shape) becomes one ``into``:
    n chains, n more ``into``, n fewer of each chain type. Chains sharing their tail (an
    Add2 of two BNs) count once: one of the heads fuses, the other stays."""

    chain: Tuple[str, ...] = ("BatchNormalization", "Add2", "ReLU")
    into: str = "FusedBatchNormalization"

    def matches(self, functions):
        readers, tails = _readers(functions), {}
        for head in (f for f in functions if f.info.type_name == self.chain[0]):
            f, ok = head, True
            for kind in self.chain[1:]:
                nxt = readers.get(f.outputs[0], [])
                if len(f.outputs) != 1 or len(nxt) != 1 or nxt[0].info.type_name != kind \
                        or len({tuple(v.shape) for v in nxt[0].inputs}) != 1:
                    ok = False
                    break
                f = nxt[0]
            if ok:
                tails.setdefault(f, head)
        return len(tails)

    def check(self, before, after):
        n = self.matches(before)
        types = (self.into,) + tuple(dict.fromkeys(self.chain))
        c0, c1 = _counts(before, types), _counts(after, types)
        want = [c0[0] + n] + [c - n * self.chain.count(t) for c, t in zip(c0[1:], types[1:])]
        figures = ", ".join("{} {} -> {}".format(t, a, b) for t, a, b in zip(types, c0, c1))
        return c1 == want, "{}: {} matched; {} (expected each fused into one {})".format(
            " -> ".join(self.chain), n, figures, self.into)


@dataclass(frozen=True)
class NoGradients:
    """No parameter of the converted graph (a leaf in a parameter slot) needs a gradient."""

    def check(self, before, after):
        n0 = sum(v.need_grad for v in _parameters(before))
        n1 = sum(v.need_grad for v in _parameters(after))
        return n1 == 0, "parameters needing a gradient: {} -> {} of {} (expected 0 left)".format(
            n0, n1, len(_parameters(after)))


@dataclass(frozen=True)
class HasBias:
    """Every ``types`` function next to a ``neighbour`` (reading its output, or read by it)
    has a bias: 3 inputs."""

    types: Tuple[str, ...] = ("Convolution", "Deconvolution", "Affine")
    neighbour: str = "BatchNormalization"

    def _without_bias(self, functions):
        readers = _readers(functions)
        return sum(1 for f in functions if f.info.type_name in self.types and len(f.inputs) < 3
                   and (_kind(f.inputs[0]) == self.neighbour or any(
                       g.info.type_name == self.neighbour for g in readers.get(f.outputs[0], []))))

    def check(self, before, after):
        n0, n1 = self._without_bias(before), self._without_bias(after)
        return n1 == 0, "{} without bias next to a {}: {} -> {} (expected 0 left)".format(
            "/".join(self.types), self.neighbour, n0, n1)


@dataclass(frozen=True)
class SharesParameters:
    """The converted graph reads the original's parameters themselves: none new, none copied."""

    def check(self, before, after):
        known = set(_parameters(before))
        new = [v for v in _parameters(after) if v not in known]
        return not new, "parameters read: {} -> {}, {} not the original's (expected 0)".format(
            len(known), len(_parameters(after)), len(new))


def _tensors(functions, types, positions):
    """The distinct variables read at ``positions`` (a slice) by the ``types`` functions."""
    return list({v: None for f in functions if f.info.type_name in types for v in f.inputs[positions]})


@dataclass(frozen=True)
class Records:
    """Every input of every ``types`` function is read through a recorder, one per tensor:
    as many recorders as the original's ``types`` functions read distinct tensors."""

    types: Tuple[str, ...] = INNER_PRODUCT
    recorders: Tuple[str, ...] = RECORDERS

    def check(self, before, after):
        tensors = len(_tensors(before, self.types, slice(None)))
        made = sum(_counts(after, self.recorders))
        unrecorded = sum(_kind(v) not in self.recorders for v in _tensors(after, self.types, slice(None)))
        return made == tensors and not unrecorded, "inputs of {}: {} tensors, {} recorders, {} read " \
            "unrecorded (expected one recorder per tensor)".format(
                "/".join(self.types), tensors, made, unrecorded)


@dataclass(frozen=True)
class QuantizesInputs:
    """QDQ from recorders: every data input and weight of every ``types`` function is read
    through ``DequantizeLinear(QuantizeLinear(.))``, one pair per tensor; every bias through
    its accumulator grid ``Mul2(Round(Div2(b, s)), s)``; no recorder is left."""

    types: Tuple[str, ...] = INNER_PRODUCT
    recorders: Tuple[str, ...] = RECORDERS

    @staticmethod
    def _qdq(v):
        return _kind(v) == "DequantizeLinear" and _kind(v.parent.inputs[0]) == "QuantizeLinear"

    @staticmethod
    def _grid(v):
        return _kind(v) == "Mul2" and _kind(v.parent.inputs[0]) == "Round" \
            and _kind(v.parent.inputs[0].parent.inputs[0]) == "Div2"

    def check(self, before, after):
        tensors = len(_tensors(before, self.types, slice(0, 2)))
        pairs = _counts(after, ("QuantizeLinear", "DequantizeLinear"))
        float_inputs = sum(not self._qdq(v) for v in _tensors(after, self.types, slice(0, 2)))
        float_biases = sum(not self._grid(v) for v in _tensors(after, self.types, slice(2, 3)))
        left = sum(_counts(after, self.recorders))
        ok = pairs == [tensors, tensors] and not float_inputs and not float_biases and not left
        return ok, "inputs and weights of {}: {} tensors, {} QuantizeLinear/{} DequantizeLinear, {} " \
            "read without them, {} biases off their grid, {} recorders left (expected one pair per " \
            "tensor, every bias on its grid, 0 recorders)".format(
                "/".join(self.types), tensors, pairs[0], pairs[1], float_inputs, float_biases, left)


@dataclass(frozen=True)
class Speed:
    """On ``device``, the converted graph runs at least ``min_ratio`` times as fast as the
    original (ratio = original time / converted time). ``min_ratio=None`` only measures.
    ``type_config="half"`` times half precision; ``min_compute_capability=(7, 0)`` needs Volta+.
    The ratio only counts when the original forward takes at least ``min_seconds``: faster
    graphs measure per-call overhead and timer noise, so their ratio is shown, not judged."""

    device: str
    min_ratio: Optional[float] = None
    type_config: str = "float"
    min_compute_capability: Optional[Tuple[int, int]] = None
    min_seconds: float = 0.02

    def describe(self):
        need = ">= {:g}x".format(self.min_ratio) if self.min_ratio is not None else "measured"
        extra = ", {}".format(self.type_config) if self.type_config != "float" else ""
        if self.min_compute_capability:
            extra += ", compute capability >= {}.{}".format(*self.min_compute_capability)
        return "{} on {}{}".format(need, self.device, extra)
