"""The converters under fuzz: the one list to extend (``TARGETS``, in the order they run).

Each entry adapts a converter to ``convert(model) -> outputs | Conversion`` and states its
oracle. Lossless converters must reproduce the original within float32 tolerance; the
fixed-point ones run at 24 bits (the widest grid float32 holds exactly), where quantization
moves every weight by at most ``max|w| / 2^24`` and every activation by half a step, so the
same comparison with a looser ``atol`` still catches wiring mistakes (wrong channel axis,
shared weights, a missed layer).

``fuzz_target(token)`` resolves a name listed here or a ``package.module:attribute`` spec
(how a user's own target is named in a saved reproducer).
"""
import importlib

import numpy as np

from .harness import Conversion, FuzzTarget

__all__ = ["TARGETS", "target_names", "fuzz_target", "UnknownTargetError"]


class UnknownTargetError(LookupError):
    pass


def _seed003(factory):
    """Seed-003 form: ``Converter(params=...).convert(outputs, inputs)``."""
    def convert(model):
        return factory(params=model.params).convert(model.outputs, model.inputs)
    return convert


def _modifiers(factory):
    """Seed-000 form: ``GraphConverter([modifiers], params=...).convert(outputs)``."""
    def convert(model):
        import converters as GC
        return GC.GraphConverter(factory(model), params=model.params).convert(model.outputs)
    return convert


def _channel_last(model):
    """Seed 000's ChannelLastModifier; inputs fed channel-last, outputs brought back."""
    import converters as GC
    modifier = GC.ChannelLastModifier(model.inputs)
    gc = GC.GraphConverter([modifier], params=model.params)
    outputs = gc.convert(model.outputs)
    perms = modifier.passes()[0].output_layouts(model.outputs, model.params)
    data = [np.moveaxis(d, 1, -1) if x_cl not in set(model.inputs) else d
            for x_cl, d in zip(modifier.inputs_cl, model.input_data)]
    return Conversion(outputs, inputs=modifier.inputs_cl, input_data=data,
                      params=dict(model.params, **gc.last_result.new_parameters),
                      output_perms=perms)


def _channel_round_trip(model):
    """ChannelLast (outputs left channel-last) then ChannelFirst back: the original numbers."""
    import converters as GC
    to_last = GC.ChannelLastModifier(model.inputs, restore_outputs=False)
    gc = GC.GraphConverter([to_last], params=model.params)
    middle = gc.convert(model.outputs)
    middle = [middle] if not isinstance(middle, list) else middle
    perms = to_last.passes()[0].output_layouts(model.outputs, model.params)
    names = dict(model.params, **gc.last_result.new_parameters)
    to_first = GC.ChannelFirstModifier(to_last.inputs_cl)  # restores its outputs to ``middle``'s layouts
    outputs = GC.GraphConverter([to_first], params=names).convert(middle)
    converted_to_last = {v for v, x in zip(to_last.inputs_cl, model.inputs) if v is not x}
    data = [np.moveaxis(d, 1, -1) if v in converted_to_last and v_cf is v else d
            for v, v_cf, d in zip(to_last.inputs_cl, to_first.inputs_cf, model.input_data)]
    return Conversion(outputs, inputs=to_first.inputs_cf, input_data=data, params=names,
                      output_perms=perms)


def _cpu_runnable(outputs, params):
    from converters.layout_emulation import cpu_runnable
    return cpu_runnable(outputs, params)


def _bn_folded(params):
    import converters as GC
    return GC.BatchNormalizationFoldedConverter(params=params)


def _bn_linear(params):
    import converters as GC
    return GC.BatchNormalizationLinearConverter(params=params)


def _bn_fold_opposite(model):
    import converters as GC
    return [GC.BatchNormalizationFoldingModifier(opposite=True)]


def _identity(params):
    import converters as GC
    return GC.IdentityConverter(params=params)


def _fixed_point_weights(params):
    import converters as GC
    return GC.FixedPointWeightConverter(params=params, n=24, per_channel=True)


def _fixed_point_activations(params):
    import converters as GC
    return GC.FixedPointActivationConverter(
        params=params, n=24, delta=2.0 ** -14,
        functions=("ReLU", "LeakyReLU", "ELU", "ReLU6", "Sigmoid", "Tanh", "Swish"))


def _low_rank_full(params):
    import converters as GC
    return GC.LowRankConverter(params=params, energy=1.0, skip_if_larger=False)


TARGETS = (
    FuzzTarget("identity", _seed003(_identity), may_refuse=False,
               description="IdentityConverter: a fresh copy of the graph"),
    FuzzTarget("bn-folded", _seed003(_bn_folded),
               description="BatchNormalizationFoldedConverter (fold into the preceding layer)"),
    FuzzTarget("bn-linear", _seed003(_bn_linear),
               description="BatchNormalizationLinearConverter (BN -> c0 * x + c1)"),
    FuzzTarget("bn-fold-opposite", _modifiers(_bn_fold_opposite),
               description="BatchNormalizationFoldingModifier(opposite=True)"),
    FuzzTarget("channel-last", _channel_last, cpu_runnable=_cpu_runnable,
               description="ChannelLastModifier, evaluated on CPU through layout_emulation"),
    FuzzTarget("channel-round-trip", _channel_round_trip, cpu_runnable=_cpu_runnable,
               description="ChannelLastModifier(restore_outputs=False) then ChannelFirstModifier"),
    FuzzTarget("fixed-point-weight", _seed003(_fixed_point_weights), atol=1e-4, rtol=1e-4,
               description="FixedPointWeightConverter, 24 bits, per channel"),
    FuzzTarget("fixed-point-activation", _seed003(_fixed_point_activations), atol=1e-3, rtol=1e-4,
               description="FixedPointActivationConverter, 24 bits, step 2^-14"),
    FuzzTarget("low-rank-full", _seed003(_low_rank_full), atol=1e-4, rtol=1e-4,
               description="LowRankConverter at full rank (energy=1.0)"),
)


def target_names():
    return [t.name for t in TARGETS]


def fuzz_target(token):
    """A target by name (``TARGETS``) or by ``package.module:attribute``."""
    for t in TARGETS:
        if t.name == token:
            return t
    if ":" in token:
        module_name, _, attr = token.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise UnknownTargetError("cannot load fuzz target {!r}: {}".format(token, e)) from None
        if isinstance(found, FuzzTarget):
            return found
        raise UnknownTargetError("{!r} is a {}, not a FuzzTarget".format(token, type(found).__name__))
    raise UnknownTargetError("unknown fuzz target {!r}; known: {} (or package.module:attribute)".format(
        token, ", ".join(target_names())))
