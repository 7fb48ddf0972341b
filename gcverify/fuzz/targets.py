"""The converters under fuzz: the registry's own entries (``TARGETS``, in the order they run).

Each target is a :class:`~gcverify.core.registry.ConverterSpec` of
:mod:`gcverify.builtin` under :meth:`FuzzTarget.from_spec`, so the fuzzer and the
matrix run the same conversion code under the same name; what only the fuzzer needs is
data here. Lossless float32 converters compare as in the matrix, within a multiple of each
random graph's measured noise floor; exact ones (identity, layout round trips) stay exact.
The fixed-point converters run at 24 bits (the widest grid float32 holds exactly), one stage at a time,
where quantization moves every weight by at most ``max|w| / 2^24`` and every activation by
half a step, so the same comparison with a larger absolute floor still catches wiring
mistakes (wrong channel axis, shared weights, a missed layer).

``fuzz_target(token)`` resolves a name listed here, a name these targets had before they
were the registry's (``bn-folded``...: saved reproducers keep working), any other built-in
converter, or a ``package.module:attribute`` naming a FuzzTarget or ConverterSpec (how a
user's own target is named in a saved reproducer).
"""
import importlib
from dataclasses import replace

from ..builtin import BUILTIN
from ..core.expectations import TOLERANCES
from ..core.registry import ConverterSpec
from .harness import FUZZ_FLOAT32, FuzzTarget

__all__ = ["TARGETS", "FORMER_NAMES", "target_names", "fuzz_target", "from_builtin", "UnknownTargetError"]


class UnknownTargetError(LookupError):
    pass


def from_builtin(spec, **overrides):
    """``FuzzTarget.from_spec`` of a built-in row: its own tolerance (the float32 noise floor
    multiple, exact...); a quantizer preset, which random graphs cannot judge, becomes the
    fuzzer's fixed ``FUZZ_FLOAT32``."""
    if spec.tolerance == TOLERANCES["quantizer"]:
        overrides.setdefault("tolerance", FUZZ_FLOAT32)
    return FuzzTarget.from_spec(spec, **overrides)


_FIXED_POINT_ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "ReLU6", "Sigmoid", "Tanh", "Swish")


def _targets(specs):
    def spec(name):
        return next(s for s in specs if s.name == name)
    fixed_point = spec("fixed_point")
    weight_24 = fixed_point.variant(
        "fixed_point_weight", dict(weight=dict(n=24, per_channel=True), activation=False),
        description="FixedPointWeightConverter alone, 24 bits, per channel")
    activation_24 = fixed_point.variant(
        "fixed_point_activation", dict(weight=False, activation=dict(
            n=24, delta=2.0 ** -14, functions=_FIXED_POINT_ACTIVATIONS)),
        description="FixedPointActivationConverter alone, 24 bits, step 2^-14")
    return (
        from_builtin(spec("identity"), may_refuse=False),
        from_builtin(spec("bn_fold")),
        from_builtin(spec("bn_linear")),
        from_builtin(spec("bn_fold_opposite")),
        from_builtin(spec("channel_last")),
        from_builtin(spec("bn_fold_channel_last")),
        from_builtin(spec("channel_roundtrip_unrestored")),
        from_builtin(weight_24, tolerance=replace(FUZZ_FLOAT32, floor=1e-4)),
        from_builtin(activation_24, tolerance=replace(FUZZ_FLOAT32, floor=1e-3)),
        from_builtin(spec("low_rank")),
    )


TARGETS = _targets(BUILTIN)
# the names the targets had when the fuzzer kept its own list
FORMER_NAMES = {"bn-folded": "bn_fold", "bn-linear": "bn_linear", "bn-fold-opposite": "bn_fold_opposite",
                "channel-last": "channel_last", "channel-round-trip": "channel_roundtrip_unrestored",
                "fixed-point-weight": "fixed_point_weight",
                "fixed-point-activation": "fixed_point_activation", "low-rank-full": "low_rank"}


def target_names():
    return [t.name for t in TARGETS]


def fuzz_target(token):
    """A target by name (``TARGETS``, ``FORMER_NAMES``, then any built-in converter) or by
    ``package.module:attribute`` (a FuzzTarget or a ConverterSpec)."""
    name = FORMER_NAMES.get(token, token)
    for t in TARGETS:
        if t.name == name:
            return t
    for spec in BUILTIN:
        if spec.name == name:
            if spec.reference is not None:  # its expected numbers are not the original's
                raise UnknownTargetError("{} is judged against a reference the fuzzer does not compute "
                                         "(its numbers change by design); it cannot be fuzzed".format(name))
            return from_builtin(spec)
    if ":" in token:
        module_name, _, attr = token.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise UnknownTargetError("cannot load fuzz target {!r}: {}".format(token, e)) from None
        if isinstance(found, ConverterSpec):
            return FuzzTarget.from_spec(found)
        if isinstance(found, FuzzTarget):
            return found
        raise UnknownTargetError("{!r} is a {}, not a FuzzTarget or ConverterSpec".format(
            token, type(found).__name__))
    raise UnknownTargetError("unknown fuzz target {!r}; known: {}, or another built-in converter "
                             "({}), or package.module:attribute".format(
                                 token, ", ".join(target_names()),
                                 ", ".join(s.name for s in BUILTIN if s.name not in target_names())))
