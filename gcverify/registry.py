"""The converter registry: every conversion the matrix verifies, and what it must achieve.

An entry (:class:`ConverterSpec`) is data: a deterministic ``name`` (the id part in
``[bn_fold-resnet50-cpu]``), a ``kind`` ("ours", or "peer" for NNabla's built-in modifiers,
whose failures are expected and reported as diagnoses), a ``convert(model)`` callable, and
its expectations: a numeric :class:`Tolerance`, layer rules (:class:`Removes`,
:class:`Adds`, :class:`Unchanged`), whether the converted graph needs the CPU channel-last
emulation, and :class:`Speed` expectations per device. A model may override the tolerance
(``Model.tolerance_for(name)``).

There is no module-level registry: a session owns a :class:`ConverterRegistry`
(``ConverterRegistry.builtin()`` plus what conftest files mark with :func:`converter`).
The built-in entries themselves live in :mod:`gcverify.builtin_converters`.
"""
import fnmatch
import functools
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

from .named_registry import NamedRegistry

__all__ = ["Tolerance", "TOLERANCES", "Functions", "Removes", "Adds", "Unchanged", "Speed",
           "Conversion", "ConverterSpec", "ConverterRegistry", "UnknownConverterError",
           "converter", "as_conversion"]

MARK = "__gcverify_converter__"
KINDS = ("ours", "peer")


class UnknownConverterError(LookupError):
    pass


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
        """A copy with ``{"rtol": .., "atol": .., "rms": .., "floor": ..}`` or ``{"preset": "float16"}``."""
        overrides = dict(overrides or {})
        base = TOLERANCES[overrides.pop("preset")] if "preset" in overrides else self
        unknown = sorted(set(overrides) - {"rtol", "atol", "rms", "floor"})
        if unknown:
            raise ValueError("unknown tolerance key(s) {}; use rtol, atol, rms, floor or preset".format(
                ", ".join(unknown)))
        if not overrides:
            return base
        return replace(base, name=base.name + "*" if base.name else "", **overrides)

    def describe(self):
        if self.rtol == 0 and self.atol == 0 and self.rms is None and self.floor == 0:
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
    """The function histogram is the same before and after (identity, round trips)."""

    def check(self, before, after):
        h0 = Counter(f.info.type_name for f in before)
        h1 = Counter(f.info.type_name for f in after)
        if h0 == h1:
            return True, "histogram unchanged ({} functions)".format(sum(h0.values()))
        diff = ", ".join("{} {}->{}".format(k, h0.get(k, 0), h1.get(k, 0))
                         for k in sorted(set(h0) | set(h1)) if h0.get(k, 0) != h1.get(k, 0))
        return False, "histogram changed (expected unchanged): " + diff


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


@dataclass
class Conversion:
    """What a converter produced, normalised for the checks (the matrix and the fuzzer).

    ``inputs[i]`` is the variable to feed with the model's ``input_data[i]`` (None: the
    model's own inputs), moved by ``input_perms[i]`` (``transpose`` axes, e.g. channel-last;
    None: as is), unless ``input_data`` gives the arrays outright. Output ``i`` holds
    ``transpose(original_i, output_perms[i])`` (None: the original layout).
    :mod:`gcverify.evaluation` feeds and reads a conversion by these fields. ``var_map`` maps
    original variables to the converted graph's (for locating the first diverging
    function); ``parameters`` names the converted graph's parameters (model parameters plus
    new ones).
    """

    outputs: List[object]
    inputs: Optional[List[object]] = None
    var_map: Dict[object, object] = field(default_factory=dict)
    parameters: Dict[str, object] = field(default_factory=dict)
    events: list = field(default_factory=list)
    seconds: Optional[float] = None  # conversion time, when measured
    input_perms: Optional[list] = None
    input_data: Optional[list] = None
    output_perms: Optional[list] = None

    @property
    def params(self):
        """``parameters`` under the name the fuzz harness's own Conversion used."""
        return self.parameters


def as_conversion(result, model):
    """Accept what a user's ``convert(model)`` returns: a Conversion, outputs, or
    ``(outputs, inputs)``; the model's own inputs are fed when none are given."""
    import nnabla as nn
    if isinstance(result, Conversion):
        if result.inputs is None or not result.parameters:
            result = replace(result, inputs=list(model.inputs if result.inputs is None else result.inputs),
                             parameters=result.parameters or dict(model.params))
        return result
    inputs = list(model.inputs)
    if isinstance(result, tuple) and len(result) == 2 and not isinstance(result[0], nn.Variable):
        result, inputs = result
    outputs = [result] if isinstance(result, nn.Variable) else list(result)
    for i, o in enumerate(outputs):
        if not isinstance(o, nn.Variable):
            raise TypeError("converter output {} is a {}, not an nnabla.Variable".format(
                i, type(o).__name__))
    return Conversion(outputs, list(inputs), parameters=dict(model.params))


@dataclass(frozen=True)
class ConverterSpec:
    """A registry entry. ``convert(model)`` returns a :class:`Conversion` (or outputs)."""

    name: str
    convert: Callable
    kind: str = "ours"
    description: str = ""
    tolerance: Tolerance = TOLERANCES["float32"]
    layers: Tuple[object, ...] = ()
    cpu_emulation: bool = False
    speed: Tuple[Speed, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError("converter {!r}: kind must be one of {}, not {!r}".format(
                self.name, KINDS, self.kind))
        if not self.name or "-" in self.name or not self.name.isidentifier():
            raise ValueError("converter name {!r} must be an identifier without '-' (it is "
                             "part of test ids like bn_fold-resnet50-cpu)".format(self.name))

    def tolerance_for(self, model):
        return self.tolerance.merged(model.tolerance_for(self.name))

    def variant(self, name, options=None, **changes):
        """This entry under another ``name``: ``convert`` called with the keyword arguments
        ``options``, and any other field replaced by ``changes`` (tolerance, layers...)."""
        convert = functools.partial(self.convert, **options) if options else self.convert
        return replace(self, name=name, convert=convert, **changes)

    def speed_on(self, device):
        return next((s for s in self.speed if s.device == device), None)


def converter(name=None, *, kind="ours", description="", tolerance=None, layers=(),
              cpu_emulation=False, speed=()):
    """Mark ``convert(model)`` as a gcverify converter (collected from conftest.py files).

    ``tolerance`` is a :class:`Tolerance`, a preset name ("float32", "quantizer"...) or a
    dict of overrides of the float32 preset.
    """
    if isinstance(tolerance, str):
        tolerance = TOLERANCES[tolerance]
    elif isinstance(tolerance, dict):
        tolerance = TOLERANCES["float32"].merged(tolerance)

    def mark(fn):
        setattr(fn, MARK, ConverterSpec(name or fn.__name__, fn, kind,
                                        description or (fn.__doc__ or "").strip(),
                                        tolerance or TOLERANCES["float32"], tuple(layers),
                                        cpu_emulation, tuple(speed)))
        return fn
    return mark


class ConverterRegistry(NamedRegistry):
    """The converters of one session, in registration order (which is the matrix order)."""

    spec_type, mark, what, target = ConverterSpec, MARK, "converter", "convert"

    @classmethod
    def builtin(cls):
        from .builtin_converters import BUILTIN
        return cls(BUILTIN)

    def get(self, name):
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownConverterError("unknown converter {!r}; known converters: {}".format(
                name, ", ".join(self._specs))) from None

    def select(self, selection=None):
        """Entries matching a comma list of names, globs (``nnabla_*``) or kinds (``ours``,
        ``peer``); all of them for an empty selection. Keeps registry order."""
        tokens = [t.strip() for t in (selection or "").split(",") if t.strip()]
        if not tokens:
            return list(self._specs.values())
        chosen = set()
        for t in tokens:
            hits = [s.name for s in self._specs.values()
                    if s.kind == t or fnmatch.fnmatchcase(s.name, t)]
            if not hits:
                raise UnknownConverterError(
                    "--gc-converters: {!r} matches no converter; known converters: {} "
                    "(or a kind: ours, peer; globs like nnabla_* work)".format(
                        t, ", ".join(self._specs)))
            chosen.update(hits)
        return [s for s in self._specs.values() if s.name in chosen]
