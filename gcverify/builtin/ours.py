"""Our converters as matrix rows (through ``import converters as GC``, both seed APIs).

Each ``convert(model)`` works on the model it is given (the case hands it a faithful copy)
and returns a :class:`~gcverify.core.conversion.Conversion`, stating where the layout
conversions moved inputs and outputs. Adding a converter is one function plus one
:class:`~gcverify.core.registry.ConverterSpec` in ``OURS``; a variant (other options, other
expectations) is ``spec.variant(name, options, ...)``. The fuzzer (:mod:`gcverify.fuzz.targets`)
fuzzes these same entries.
"""
import nnabla as nn

from ..core.conversion import Conversion
from ..core.expectations import TOLERANCES, VOLTA, Adds, Functions, Removes, Speed, Unchanged
from ..core.layouts import channel_first_perm, channel_last_perm, compose_perms
from ..core.registry import ConverterSpec
from ..verify.execution import feed

__all__ = ["OURS", "CHANNEL_FIRST_OPS", "CHANNEL_LAST_OPS", "FIXED_POINT_OPTIONS", "LAYOUT_TYPES",
           "NO_BN", "CPU_NOT_SLOWER", "TENSOR_CORE", "spec_of"]

LAYOUT_TYPES = ("Convolution", "Deconvolution", "MaxPooling", "AveragePooling", "SumPooling")
CHANNEL_FIRST_OPS = tuple(Functions.of(t, channel_last=False) for t in LAYOUT_TYPES)
CHANNEL_LAST_OPS = tuple(Functions.of(t, channel_last=True) for t in LAYOUT_TYPES)
NO_BN = (Removes(Functions("BatchNormalization")),)
# BN folding removes one op per BN; on CPU it must not be slower than the original.
CPU_NOT_SLOWER = (Speed("cpu", min_ratio=0.9),)
# TensorCores want NHWC: on Volta+ in half precision channel-last must clearly win.
TENSOR_CORE = (Speed("cudnn", min_ratio=1.2, type_config="half", min_compute_capability=VOLTA),)
FIXED_POINT_OPTIONS = dict(weight=dict(n=8), activation=dict(n=16, delta=2 ** -4))


def _gc():
    import converters as GC  # imported lazily so the plugin loads even if a family is broken
    return GC


def _ours(facade, outputs, model, inputs=None, first=None, **layouts):
    """A Conversion from one of our facades (its ``last_result`` is a Rewrite); ``layouts``:
    ``input_perms`` / ``output_perms`` where the conversion moved them."""
    result = facade.last_result
    var_map = dict(result.var_map)
    params = dict(model.params)
    if first is not None:  # a two-step conversion: compose the maps
        var_map = {k: var_map.get(v, v) for k, v in first.var_map.items()}
        params.update(first.new_parameters)
    params.update(result.new_parameters)
    outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
    return Conversion(outputs, list(inputs if inputs is not None else model.inputs), var_map,
                      params, list(result.events), **layouts)


def _moved(before, after, perm_of):
    """Per input, the ``transpose`` axes from ``before[i]`` to ``after[i]``: ``perm_of(ndim)``
    where the conversion put a new variable in its place, None where it kept it."""
    return [perm_of(len(x.shape)) if y is not x else None for x, y in zip(before, after)]


def _output_layouts(modifier, model):
    return modifier.passes()[0].output_layouts(list(model.outputs), model.params)


def bn_fold(model, opposite=False):
    """BN folded into the preceding layer (seed 000 GraphConverter + modifier)."""
    GC = _gc()
    gc = GC.GraphConverter([GC.BatchNormalizationFoldingModifier(opposite=opposite)],
                           params=model.params)
    return _ours(gc, gc.convert(list(model.outputs)), model)


def bn_linear(model):
    """BN as one per-channel scale and shift (seed 003 BatchNormalizationLinearConverter)."""
    GC = _gc()
    c = GC.BatchNormalizationLinearConverter(name="bn-linear", params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def channel_last(model, fold_bn=False):
    """NCHW -> NHWC (seed 000 ChannelLastModifier), evaluated via CPU emulation. With
    ``fold_bn``, BN is folded first: the TensorCore deployment (NHWC, no BN) in one go."""
    GC = _gc()
    m = GC.ChannelLastModifier(list(model.inputs))
    modifiers = [GC.BatchNormalizationFoldingModifier(), m] if fold_bn else [m]
    gc = GC.GraphConverter(modifiers, params=model.params)
    return _ours(gc, gc.convert(list(model.outputs)), model, inputs=m.inputs_cl,
                 input_perms=_moved(model.inputs, m.inputs_cl, channel_last_perm),
                 output_perms=_output_layouts(m, model))


def channel_roundtrip(model, restore_outputs=True):
    """ChannelLast then ChannelFirst: must give the original numbers exactly. With
    ``restore_outputs=False`` the first step leaves spatial outputs channel-last and the
    second keeps them so (it restores the layouts of the graph it was given)."""
    GC = _gc()
    to_last = GC.ChannelLastModifier(list(model.inputs), restore_outputs=restore_outputs)
    g1 = GC.GraphConverter([to_last], params=model.params)
    y = g1.convert(list(model.outputs))
    to_first = GC.ChannelFirstModifier(to_last.inputs_cl)
    g2 = GC.GraphConverter([to_first], params={**model.params, **g1.last_result.new_parameters})
    outputs = g2.convert(y)
    moved = [compose_perms(p, q) for p, q in zip(_moved(model.inputs, to_last.inputs_cl, channel_last_perm),
                                         _moved(to_last.inputs_cl, to_first.inputs_cf, channel_first_perm))]
    return _ours(g2, outputs, model, inputs=to_first.inputs_cf, first=g1.last_result,
                 input_perms=moved, output_perms=_output_layouts(to_last, model))


def fixed_point(model, weight=True, activation=True):
    """8-bit weights, 16-bit activations (seed 003 SequentialConverter). ``weight`` and
    ``activation``: True for those defaults, False to leave that part as it is, or the
    options of FixedPointWeightConverter / FixedPointActivationConverter."""
    GC = _gc()
    steps = []
    for make, given, default in ((GC.FixedPointWeightConverter, weight, FIXED_POINT_OPTIONS["weight"]),
                                 (GC.FixedPointActivationConverter, activation,
                                  FIXED_POINT_OPTIONS["activation"])):
        if given is not False:
            steps.append(make(name="fixed-point", **(default if given is True else given)))
    c = GC.SequentialConverter(steps, name="fixed-point", params=model.params)
    return _ours(c, c.convert(list(model.outputs), list(model.inputs)), model)


def statistics(model):
    """StatisticsConverter: recording taps on inner-product inputs, outputs exactly equal."""
    GC = _gc()
    c = GC.StatisticsConverter(params=model.params)
    outputs = c.convert(list(model.outputs), list(model.inputs))
    return _ours(c, outputs, model, names=c.recorder.tap_names())


def qdq(model):
    """Int8 quantize/dequantize before inner-product layers, ranges calibrated on the input."""
    GC = _gc()
    calibrate = GC.StatisticsConverter(params=model.params)
    taps = calibrate.convert(list(model.outputs), list(model.inputs))
    feed(model.inputs, model.input_data)
    calibrate.recorder.forward(taps)
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


_spec = ConverterSpec.from_function


_FIXED_POINT_OPS = (Adds((Functions("FixedPointQuantize"), Functions("FixedPointQuantizedConvolution"),
                          Functions("FixedPointQuantizedAffine"))),)

_BN_FOLD = _spec(bn_fold, layers=NO_BN, speed=CPU_NOT_SLOWER)
_CHANNEL_LAST = _spec(channel_last, layers=tuple(Removes(w) for w in CHANNEL_FIRST_OPS),
                      cpu_emulation=True, speed=TENSOR_CORE)
_CHANNEL_ROUNDTRIP = _spec(channel_roundtrip, tolerance=TOLERANCES["exact"],
                           layers=tuple(Removes(w) for w in CHANNEL_LAST_OPS))

OURS = (
    _BN_FOLD,
    _spec(bn_linear, layers=NO_BN, speed=CPU_NOT_SLOWER),
    _CHANNEL_LAST,
    _CHANNEL_LAST.variant("bn_fold_channel_last", dict(fold_bn=True),
                          layers=NO_BN + _CHANNEL_LAST.layers,
                          description="BN folded, then NCHW -> NHWC (the TensorCore deployment)"),
    _CHANNEL_ROUNDTRIP,
    _spec(fixed_point, tolerance=TOLERANCES["quantizer"], layers=_FIXED_POINT_OPS),
    _spec(statistics, tolerance=TOLERANCES["exact"]),
    _spec(qdq, tolerance=TOLERANCES["quantizer"],
          layers=(Adds((Functions("QuantizeLinear"), Functions("DequantizeLinear"))),)),
    _spec(low_rank, layers=(Adds((Functions("Affine"), Functions("Convolution"))),)),
    _spec(identity, tolerance=TOLERANCES["exact"], layers=(Unchanged(),)),
    # where exact, BN folds into the *following* layer; in the zoo every such BN forks or
    # meets padding and is rightly kept (the fuzzer sees exact folds), so the matrix checks
    # the numbers and that nothing else changed, where NNabla's peer overwrites weights
    _BN_FOLD.variant("bn_fold_opposite", dict(opposite=True), layers=(), speed=(),
                     description="BN folded into the following layer where exact "
                                 "(BatchNormalizationFoldingModifier(opposite=True))"),
    _CHANNEL_ROUNDTRIP.variant("channel_roundtrip_unrestored", dict(restore_outputs=False),
                               description="ChannelLast(restore_outputs=False) then "
                                           "ChannelFirst: spatial outputs stay channel-last"),
)


def spec_of(name, specs=None):
    """The entry called ``name`` among ``specs`` (default: ours)."""
    return next(s for s in (OURS if specs is None else specs) if s.name == name)
