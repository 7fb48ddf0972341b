"""The built-in matrix rows: our converters (through ``import converters as GC``, both seed
APIs) and NNabla 1.39's built-in modifiers as peers for comparison.

Each ``convert(model)`` works on the model it is given (the runner hands it a fresh copy) and
returns a :class:`~gcverify.registry.Conversion`. Adding a converter is one function plus
one :class:`~gcverify.registry.ConverterSpec` in ``BUILTIN``.

Peers run inside ``model.parameter_scope()``, a throwaway scope holding the model's
parameters by name: NNabla's modifiers find parameter names through the current scope and
write new parameters into it (``w-folded``, ``b``, ``c0-...``), which must never reach the
global scope.
"""
import nnabla as nn

from .registry import (TOLERANCES, Adds, Conversion, ConverterSpec, Functions, Removes, Speed,
                       Unchanged)

__all__ = ["BUILTIN", "CHANNEL_FIRST_OPS", "CHANNEL_LAST_OPS"]

_LAYOUT_TYPES = ("Convolution", "Deconvolution", "MaxPooling", "AveragePooling", "SumPooling")
CHANNEL_FIRST_OPS = tuple(Functions.of(t, channel_last=False) for t in _LAYOUT_TYPES)
CHANNEL_LAST_OPS = tuple(Functions.of(t, channel_last=True) for t in _LAYOUT_TYPES)
_NO_BN = (Removes(Functions("BatchNormalization")),)
# BN folding removes one op per BN; on CPU it must not be slower than the original.
_CPU_NOT_SLOWER = (Speed("cpu", min_ratio=0.9),)
# TensorCores want NHWC: on Volta+ in half precision channel-last must clearly win.
_TENSOR_CORE = (Speed("cudnn", min_ratio=1.2, type_config="half", min_compute_capability=(7, 0)),)
_FIXED_POINT_OPTIONS = dict(weight=dict(n=8), activation=dict(n=16, delta=2 ** -4))


def _gc():
    import converters as GC  # imported lazily so the plugin loads even if a family is broken
    return GC


def _ours(facade, outputs, model, inputs=None, first=None):
    """A Conversion from one of our facades (its ``last_result`` is a Rewrite)."""
    result = facade.last_result
    var_map = dict(result.var_map)
    params = dict(model.params)
    if first is not None:  # a two-step conversion: compose the maps
        var_map = {k: var_map.get(v, v) for k, v in first.var_map.items()}
        params.update(first.new_parameters)
    params.update(result.new_parameters)
    outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
    return Conversion(outputs, list(inputs if inputs is not None else model.inputs), var_map,
                      params, list(result.events))


def bn_fold(model):
    """BN folded into the preceding layer (seed 000 GraphConverter + modifier)."""
    GC = _gc()
    gc = GC.GraphConverter([GC.BatchNormalizationFoldingModifier()], params=model.params)
    return _ours(gc, gc.convert(list(model.outputs)), model)


def bn_linear(model):
    """BN as one per-channel scale and shift (seed 003 BatchNormalizationLinearConverter)."""
    GC = _gc()
    c = GC.BatchNormalizationLinearConverter(name="bn-linear", params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def channel_last(model):
    """NCHW -> NHWC (seed 000 ChannelLastModifier), evaluated via CPU emulation."""
    GC = _gc()
    m = GC.ChannelLastModifier(list(model.inputs))
    gc = GC.GraphConverter([m], params=model.params)
    return _ours(gc, gc.convert(list(model.outputs)), model, inputs=m.inputs_cl)


def channel_roundtrip(model):
    """ChannelLast then ChannelFirst: must give the original numbers exactly."""
    GC = _gc()
    to_last = GC.ChannelLastModifier(list(model.inputs))
    g1 = GC.GraphConverter([to_last], params=model.params)
    y = g1.convert(list(model.outputs))
    to_first = GC.ChannelFirstModifier(to_last.inputs_cl)
    g2 = GC.GraphConverter([to_first], params={**model.params, **g1.last_result.new_parameters})
    return _ours(g2, g2.convert(y), model, inputs=to_first.inputs_cf, first=g1.last_result)


def fixed_point(model):
    """8-bit weights, 16-bit activations (seed 003 SequentialConverter)."""
    GC = _gc()
    c = GC.SequentialConverter(
        [GC.FixedPointWeightConverter(name="fixed-point", **_FIXED_POINT_OPTIONS["weight"]),
         GC.FixedPointActivationConverter(name="fixed-point", **_FIXED_POINT_OPTIONS["activation"])],
        name="fixed-point", params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def statistics(model):
    """StatisticsConverter: recording taps on inner-product inputs, outputs exactly equal."""
    GC = _gc()
    c = GC.StatisticsConverter(params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def qdq(model):
    """Int8 quantize/dequantize before inner-product layers, ranges calibrated on the input."""
    GC = _gc()
    calibrate = GC.StatisticsConverter(params=model.params)
    taps = calibrate.convert(list(model.outputs), list(model.inputs))
    model.feed()
    nn.forward_all(taps)
    c = GC.QuantizeDequantizeConverter(ranges=calibrate.recorder, n=8, params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def low_rank(model):
    """Full-rank SVD split of every Affine and Convolution: must reproduce the original."""
    GC = _gc()
    c = GC.LowRankConverter(energy=1.0, skip_if_larger=False,
                            params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def identity(model):
    """IdentityConverter: a fresh copy of the graph, exactly equal."""
    GC = _gc()
    c = GC.IdentityConverter(params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


# --- NNabla's built-in modifiers (peers) ----------------------------------------------
def _nnabla(model, make_modifiers, steps=1):
    """Run NNabla's GraphConverter in a throwaway scope; returns (outputs, modifiers, names)."""
    import nnabla.experimental.graph_converters as NGC
    with model.parameter_scope():
        outputs, mods = list(model.outputs), []
        for step in range(steps):
            mods.append(make_modifiers(NGC, mods))
            outputs = NGC.GraphConverter(mods[-1]).convert(list(outputs))
        names = nn.get_parameters(grad_only=False)
    return outputs, mods, dict(names)


def nnabla_bn_fold(model):
    """NNabla 1.39 BatchNormalizationFoldingModifier."""
    outputs, _, names = _nnabla(model, lambda NGC, _: [NGC.BatchNormalizationFoldingModifier()])
    return Conversion(outputs, list(model.inputs), parameters=names)


def nnabla_bn_self_fold(model):
    """NNabla 1.39 BatchNormalizationSelfFoldingModifier."""
    outputs, _, names = _nnabla(model, lambda NGC, _: [NGC.BatchNormalizationSelfFoldingModifier()])
    return Conversion(outputs, list(model.inputs), parameters=names)


def nnabla_channel_last(model):
    """NNabla 1.39 ChannelLastModifier."""
    outputs, mods, names = _nnabla(model, lambda NGC, _: [NGC.ChannelLastModifier(list(model.inputs))])
    return Conversion(outputs, list(mods[0][0].inputs_cl), parameters=names)


def nnabla_channel_roundtrip(model):
    """NNabla 1.39 ChannelLastModifier then ChannelFirstModifier."""
    def make(NGC, done):
        if not done:
            return [NGC.ChannelLastModifier(list(model.inputs))]
        return [NGC.ChannelFirstModifier(list(done[0][0].inputs_cl))]
    outputs, mods, names = _nnabla(model, make, steps=2)
    return Conversion(outputs, list(mods[1][0].inputs_cf), parameters=names)


def _spec(fn, kind="ours", **kw):
    return ConverterSpec(fn.__name__, fn, kind, (fn.__doc__ or "").strip(), **kw)


_FIXED_POINT_OPS = (Adds((Functions("FixedPointQuantize"), Functions("FixedPointQuantizedConvolution"),
                          Functions("FixedPointQuantizedAffine"))),)

BUILTIN = (
    _spec(bn_fold, layers=_NO_BN, speed=_CPU_NOT_SLOWER),
    _spec(bn_linear, layers=_NO_BN, speed=_CPU_NOT_SLOWER),
    _spec(channel_last, layers=tuple(Removes(w) for w in CHANNEL_FIRST_OPS), cpu_emulation=True,
          speed=_TENSOR_CORE),
    _spec(channel_roundtrip, tolerance=TOLERANCES["exact"],
          layers=tuple(Removes(w) for w in CHANNEL_LAST_OPS)),
    _spec(fixed_point, tolerance=TOLERANCES["quantizer"], layers=_FIXED_POINT_OPS),
    _spec(statistics, tolerance=TOLERANCES["exact"]),
    _spec(qdq, tolerance=TOLERANCES["quantizer"],
          layers=(Adds((Functions("QuantizeLinear"), Functions("DequantizeLinear"))),)),
    _spec(low_rank, layers=(Adds((Functions("Affine"), Functions("Convolution"))),)),
    _spec(identity, tolerance=TOLERANCES["exact"], layers=(Unchanged(),)),
    _spec(nnabla_bn_fold, "peer", layers=_NO_BN, speed=_CPU_NOT_SLOWER),
    _spec(nnabla_bn_self_fold, "peer", layers=_NO_BN, speed=_CPU_NOT_SLOWER),
    _spec(nnabla_channel_last, "peer", layers=tuple(Removes(w) for w in CHANNEL_FIRST_OPS),
          cpu_emulation=True, speed=_TENSOR_CORE),
    _spec(nnabla_channel_roundtrip, "peer", tolerance=TOLERANCES["exact"],
          layers=tuple(Removes(w) for w in CHANNEL_LAST_OPS)),
)
