"""What a conversion must achieve, as data: numeric tolerances, layer rules, speed.

A :class:`~gcverify.core.registry.ConverterSpec` carries these; the verify layer judges a
conversion against them. Nothing here runs a graph: layer rules look at NNabla function
objects through ``f.info`` only.
"""
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

__all__ = ["Tolerance", "TOLERANCES", "NOISE_MULTIPLE", "as_tolerance", "Functions", "Removes", "Adds",
           "Unchanged", "Speed", "VOLTA", "INNER_PRODUCT"]

VOLTA = (7, 0)  # the first compute capability with TensorCores (NHWC half-precision kernels)
# the functions that multiply an input by a weight (and add a bias): what folds and quantizers touch
INNER_PRODUCT = ("Convolution", "Deconvolution", "DepthwiseConvolution", "DepthwiseDeconvolution",
                 "Affine")


@dataclass(frozen=True)
class Tolerance:
    """Element ``i`` passes when
    ``|a_i - e_i| <= floor + noise * noise_floor + atol * scale + rtol * |e_i|``.

    ``noise`` (the ``float32`` preset) is a multiple of the model's own float32 noise floor,
    measured per output (:mod:`gcverify.verify.noise_floor`): what rounding alone moves that
    output by. ``scale`` is ``max |e|`` over the output, so ``atol`` is relative to the
    output's magnitude; ``floor`` is an absolute error always allowed. With ``rms`` set, the
    relative RMS error ``sqrt(mean(d^2) / mean(e^2))`` must also stay below it.
    """

    rtol: float = 0.0
    atol: float = 0.0
    rms: Optional[float] = None
    name: str = ""
    floor: float = 0.0
    noise: Optional[float] = None

    def merged(self, overrides):
        """A copy with ``{"rtol": .., "atol": .., "rms": .., "floor": .., "noise": ..}`` or
        ``{"preset": "float32-fixed"}``. A preset changed by overrides is named with a ``*``."""
        overrides = dict(overrides or {})
        base = TOLERANCES[overrides.pop("preset")] if "preset" in overrides else self
        unknown = sorted(set(overrides) - {"rtol", "atol", "rms", "floor", "noise"})
        if unknown:
            raise ValueError("unknown tolerance key(s) {}; use rtol, atol, rms, floor, noise or "
                             "preset".format(", ".join(unknown)))
        if not overrides:
            return base
        return replace(base, name=base.name + "*" if base.name else "", **overrides)

    @property
    def exact(self):
        return self.rtol == 0 and self.atol == 0 and self.rms is None and self.floor == 0 and not self.noise

    def describe(self):
        if self.exact:
            return "exact"
        parts = ["<= {:g}x noise floor".format(self.noise)] if self.noise else []
        parts += ["rtol={:g}".format(self.rtol)] if self.rtol or not self.noise else []
        parts += ["atol={:g}*max|y|".format(self.atol)] if self.atol or not self.noise else []
        parts += ["floor={:g}".format(self.floor)] if self.floor else []
        return " ".join(parts + (["rms<={:g}".format(self.rms)] if self.rms is not None else []))


# The multiple of the noise floor an exact-in-real-arithmetic conversion may reach: on the zoo
# honest conversions measure at most 0.6x, on 3,600 of the fuzzer's random graphs at most 1.9x.
NOISE_MULTIPLE = 4.0

TOLERANCES = {
    "exact": Tolerance(0.0, 0.0, name="exact"),
    # float32 rounding of this model: a multiple of its measured noise floor, plus 1e-7 of the
    # output's scale for outputs near zero
    "float32": Tolerance(atol=1e-7, noise=NOISE_MULTIPLE, name="float32"),
    # the fixed tolerance of earlier versions, for those who want one
    "float32-fixed": Tolerance(1e-4, 1e-5, name="float32-fixed"),
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
    """Every function matching ``what`` is gone after the conversion, except those the
    converter reports keeping with a reason that is valid: ``may_keep(view, f)`` (the
    verifier's own rule, :mod:`gcverify.verify.keep_rules`) gives the reason ``f`` of the
    original cannot be converted, or the model accepts the keep (``Model.accept_kept``)."""

    what: Functions
    may_keep: Optional[Callable] = None


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
