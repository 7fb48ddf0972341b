"""Our converters as matrix rows (through ``import converters as GC``, both seed APIs).

Each ``convert(model)`` works on the model it is given (the case hands it a faithful copy)
and returns a :class:`~gcverify.core.conversion.Conversion`, stating where the layout
conversions moved inputs and outputs. Adding a converter is one function plus one
:class:`~gcverify.core.registry.ConverterSpec` in ``OURS``; a variant (other options, other
expectations) is ``spec.variant(name, options, ...)``. The fuzzer (:mod:`gcverify.fuzz.targets`)
fuzzes these same entries.
"""
import nnabla as nn

from converters.graph_view import GraphView
from converters.layout_table import LAYOUT_DECIDING_TYPES

from ..core.conversion import Conversion
from ..core.expectations import TOLERANCES, VOLTA, Adds, Functions, Removes, Speed, Unchanged
from ..core.low_rank import LowRankSpec
from ..core.quantization import FixedPointSpec, LinearQuantSpec
from ..core.layouts import channel_first_perm, channel_last_perm, compose_perms
from ..core.registry import ConverterSpec
from ..verify.execution import feed
from ..verify.keep_rules import bn_fold_keep, bn_fold_opposite_keep, bn_inference_keep

__all__ = ["OURS", "conversion_of", "layout_inputs", "calibrated_ranges", "CHANNEL_FIRST_OPS",
           "CHANNEL_LAST_OPS", "FIXED_POINT_OPTIONS", "LAYOUT_TYPES", "NO_BN", "NO_BN_LINEAR",
           "NO_BN_OPPOSITE", "CPU_NOT_SLOWER", "TENSOR_CORE", "spec_of"]

LAYOUT_TYPES = ("Convolution", "Deconvolution", "MaxPooling", "AveragePooling", "SumPooling")
CHANNEL_FIRST_OPS = tuple(Functions.of(t, channel_last=False) for t in LAYOUT_TYPES)
CHANNEL_LAST_OPS = tuple(Functions.of(t, channel_last=True) for t in LAYOUT_TYPES)
# every BN gone, but those the verifier's own rule finds a reason to keep (and the converter says why)
NO_BN = (Removes(Functions("BatchNormalization"), may_keep=bn_fold_keep),)
NO_BN_LINEAR = (Removes(Functions("BatchNormalization"), may_keep=bn_inference_keep),)
NO_BN_OPPOSITE = (Removes(Functions("BatchNormalization"), may_keep=bn_fold_opposite_keep),)
# BN folding removes one op per BN; on CPU it must not be slower than the original.
CPU_NOT_SLOWER = (Speed("cpu", min_ratio=0.9),)
# TensorCores want NHWC: on Volta+ in half precision channel-last must clearly win.
TENSOR_CORE = (Speed("cudnn", min_ratio=1.2, type_config="half", min_compute_capability=VOLTA),)
FIXED_POINT_OPTIONS = dict(weight=dict(n=8), activation=dict(n=16, delta=2 ** -4))


def _fixed_point_spec(weight_bits=8, activation_bits=16, activation_delta=2.0 ** -4, signed=None, **fields):
    """What a fixed_point row declares: its options with the converters' defaults (activations:
    unsigned after those that are never negative, unless ``signed`` forces every one signed)."""
    from converters.fixed_point import ACTIVATION_SIGN, DEFAULT_ACTIVATIONS
    unsigned = () if signed else tuple(k for k, s in ACTIVATION_SIGN.items() if not s)
    return FixedPointSpec(weight_bits=weight_bits, activation_bits=activation_bits,
                          activation_delta=activation_delta, activation_functions=DEFAULT_ACTIVATIONS,
                          unsigned=unsigned, **fields)


def _gc():
    import converters as GC  # imported when a row runs: a broken family fails its rows only
    return GC


def conversion_of(facade, outputs, model, inputs=None, first=None, **layouts):
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


def layout_inputs(model):
    """The model's inputs that have a layout: those whose data reach a function deciding the
    layout (a convolution, a pooling...); the others (a vector of quantile fractions, an LSTM
    state, token ids) are no image and pass through a layout conversion unchanged."""
    view = GraphView(model.outputs, model.params)

    def reaches(x):
        seen, frontier = set(), [x]
        while frontier:
            v = frontier.pop()
            for g, slot in view.consumers(v):
                if g.info.type_name in LAYOUT_DECIDING_TYPES and slot == 0:
                    return True
                frontier += [w for w in g.outputs if w not in seen]
                seen.update(g.outputs)
        return False
    return [x for x in model.inputs if len(x.shape) >= 3 and reaches(x)]


def _layout_notes(model, converted):
    kept = [i for i, x in enumerate(model.inputs) if x not in set(converted)]
    if not kept:
        return []
    return ["layout: converted input(s) {}; passed through input(s) {} ({})".format(
        [i for i, x in enumerate(model.inputs) if x in set(converted)] or "none", kept,
        ", ".join(str(tuple(model.inputs[i].shape)) for i in kept))]


def _in_model_order(model, spatial, replacements):
    """The variables to feed, one per model input: its replacement where it was converted."""
    new = dict(zip(spatial, replacements))
    return [new.get(x, x) for x in model.inputs]


def bn_fold(model, opposite=False):
    """BN folded into the preceding layer (seed 000 GraphConverter + modifier)."""
    GC = _gc()
    gc = GC.GraphConverter([GC.BatchNormalizationFoldingModifier(opposite=opposite)],
                           params=model.params)
    return conversion_of(gc, gc.convert(list(model.outputs)), model)


def bn_linear(model):
    """BN as one per-channel scale and shift (seed 003 BatchNormalizationLinearConverter)."""
    GC = _gc()
    c = GC.BatchNormalizationLinearConverter(name="bn-linear", params=model.params)
    return conversion_of(c, c.convert(list(model.outputs), list(model.inputs)), model)


def channel_last(model, fold_bn=False, fold_after=False):
    """NCHW -> NHWC (seed 000 ChannelLastModifier), evaluated via CPU emulation. With
    ``fold_bn``, BN is folded first: the TensorCore deployment (NHWC, no BN) in one go; with
    ``fold_after``, folded afterwards, into channel-last layers (the other order)."""
    GC = _gc()
    spatial = layout_inputs(model)
    m = GC.ChannelLastModifier(spatial)
    fold = [GC.BatchNormalizationFoldingModifier()]
    modifiers = fold + [m] if fold_bn else [m] + fold if fold_after else [m]
    gc = GC.GraphConverter(modifiers, params=model.params)
    outputs = gc.convert(list(model.outputs))
    inputs = _in_model_order(model, spatial, m.inputs_cl)
    conversion = conversion_of(gc, outputs, model, inputs=inputs,
                       input_perms=_moved(model.inputs, inputs, channel_last_perm),
                       output_perms=_output_layouts(m, model))
    conversion.notes = _layout_notes(model, spatial)
    return conversion


def channel_roundtrip(model, restore_outputs=True):
    """ChannelLast then ChannelFirst: must give the original numbers exactly. With
    ``restore_outputs=False`` the first step leaves spatial outputs channel-last and the
    second keeps them so (it restores the layouts of the graph it was given)."""
    GC = _gc()
    spatial = layout_inputs(model)
    to_last = GC.ChannelLastModifier(spatial, restore_outputs=restore_outputs)
    g1 = GC.GraphConverter([to_last], params=model.params)
    y = g1.convert(list(model.outputs))
    to_first = GC.ChannelFirstModifier(to_last.inputs_cl)
    g2 = GC.GraphConverter([to_first], params={**model.params, **g1.last_result.new_parameters})
    outputs = g2.convert(y)
    middle = _in_model_order(model, spatial, to_last.inputs_cl)
    inputs = _in_model_order(model, spatial, to_first.inputs_cf)
    moved = [compose_perms(p, q) for p, q in zip(_moved(model.inputs, middle, channel_last_perm),
                                                 _moved(middle, inputs, channel_first_perm))]
    conversion = conversion_of(g2, outputs, model, inputs=inputs, first=g1.last_result,
                       input_perms=moved, output_perms=_output_layouts(to_last, model))
    conversion.notes = _layout_notes(model, spatial)
    return conversion


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
    return conversion_of(c, c.convert(list(model.outputs), list(model.inputs)), model)


def statistics(model, functions=()):
    """StatisticsConverter: recording taps on inner-product inputs (and the outputs of
    ``functions``), outputs exactly equal."""
    GC = _gc()
    c = GC.StatisticsConverter(params=model.params, functions=functions)
    outputs = c.convert(list(model.outputs), list(model.inputs))
    return conversion_of(c, outputs, model, names=c.recorder.tap_names())


def calibrated_ranges(model):
    """A StatisticsRecorder of one calibration forward on the model's data. The recording
    graph shares the model's parameters, and a BN in training mode updates its running
    statistics while it runs: those are put back, so calibrating changes nothing."""
    GC = _gc()
    calibrate = GC.StatisticsConverter(params=model.params)
    taps = calibrate.convert(list(model.outputs), list(model.inputs))
    training = [f for f in GraphView(model.outputs, model.params).functions
                if f.info.type_name == "BatchNormalization" and f.info.args.get("batch_stat")]
    values = [(v, v.d.copy()) for f in training for v in f.inputs[-2:]]  # running mean, var
    try:
        feed(model.inputs, model.input_data)
        calibrate.recorder.forward(taps)
    finally:
        for v, d in values:
            v.d = d
    return calibrate.recorder


def qdq(model, n=8, symmetric=True, per_channel=True):
    """Int8 quantize/dequantize before inner-product layers, ranges calibrated on the input."""
    GC = _gc()
    c = GC.QuantizeDequantizeConverter(ranges=calibrated_ranges(model), n=n, symmetric=symmetric,
                                       per_channel=per_channel, params=model.params)
    return conversion_of(c, c.convert(list(model.outputs), list(model.inputs)), model)


def low_rank(model, energy=1.0, rank=None, skip_if_larger=False):
    """Full-rank SVD split of every Affine and Convolution: must reproduce the original."""
    GC = _gc()
    kept = dict(rank=rank) if rank is not None else dict(energy=energy)
    c = GC.LowRankConverter(skip_if_larger=skip_if_larger, params=model.params, **kept)
    return conversion_of(c, c.convert(list(model.outputs), list(model.inputs)), model)


def identity(model):
    """IdentityConverter: a fresh copy of the graph, exactly equal."""
    GC = _gc()
    c = GC.IdentityConverter(params=model.params)
    return conversion_of(c, c.convert(list(model.outputs), list(model.inputs)), model)


_spec = ConverterSpec.from_function


_FIXED_POINT_OPS = (Adds((Functions("FixedPointQuantize"), Functions("FixedPointQuantizedConvolution"),
                          Functions("FixedPointQuantizedAffine"))),)

_BN_FOLD = _spec(bn_fold, layers=NO_BN, speed=CPU_NOT_SLOWER)
_FIXED_POINT = _spec(fixed_point, layers=_FIXED_POINT_OPS, quantization=_fixed_point_spec())
_QDQ = _spec(qdq, layers=(Adds((Functions("QuantizeLinear"), Functions("DequantizeLinear"))),),
             quantization=LinearQuantSpec(bits=8, symmetric=True, per_channel=True))
_LOW_RANK = _spec(low_rank, layers=(Adds((Functions("Affine"), Functions("Convolution"))),))
# The option rows below (issue #12): ResNet-50 shows them nothing the small models do not, at
# seconds per case; they run on it when --gc-models names it.
_SMALL = ("resnet50",)
_CHANNEL_LAST = _spec(channel_last, layers=tuple(Removes(w) for w in CHANNEL_FIRST_OPS),
                      cpu_emulation=True, speed=TENSOR_CORE)
_CHANNEL_ROUNDTRIP = _spec(channel_roundtrip, tolerance=TOLERANCES["exact"],
                           layers=tuple(Removes(w) for w in CHANNEL_LAST_OPS))

OURS = (
    _BN_FOLD,
    _spec(bn_linear, layers=NO_BN_LINEAR, speed=CPU_NOT_SLOWER),
    _CHANNEL_LAST,
    _CHANNEL_LAST.variant("bn_fold_channel_last", dict(fold_bn=True),
                          layers=NO_BN + _CHANNEL_LAST.layers,
                          description="BN folded, then NCHW -> NHWC (the TensorCore deployment)"),
    _CHANNEL_ROUNDTRIP,
    _FIXED_POINT,
    _spec(statistics, tolerance=TOLERANCES["exact"]),
    _QDQ,
    _LOW_RANK,
    _spec(identity, tolerance=TOLERANCES["exact"], layers=(Unchanged(),)),
    # where exact, BN folds into the *following* layer; every BN it keeps must be one the
    # verifier's own rule cannot fold either (forks, zero padding, no absorbing reader)
    _BN_FOLD.variant("bn_fold_opposite", dict(opposite=True), layers=NO_BN_OPPOSITE, speed=(),
                     description="BN folded into the following layer where exact "
                                 "(BatchNormalizationFoldingModifier(opposite=True))"),
    _CHANNEL_ROUNDTRIP.variant("channel_roundtrip_unrestored", dict(restore_outputs=False),
                               description="ChannelLast(restore_outputs=False) then "
                                           "ChannelFirst: spatial outputs stay channel-last"),
    # --- options no row used before (docs/coverage.md says what each one reaches)
    _CHANNEL_LAST.variant("channel_last_bn_fold", dict(fold_after=True), layers=NO_BN + _CHANNEL_LAST.layers,
                          speed=(), skips_by_default=_SMALL,
                          description="NCHW -> NHWC, then BN folded into the channel-last layers"),
    _FIXED_POINT.variant(
        "fixed_point_per_channel", dict(weight=dict(n=6, per_channel=True, bias_n=12),
                                        activation=dict(n=4, delta=2.0 ** -1)),
        quantization=_fixed_point_spec(6, 4, 2.0 ** -1, per_channel=True, bias_bits=12),
        skips_by_default=_SMALL, description="6-bit weights, one power-of-two step per output channel, "
        "12-bit biases, 4-bit activations (ReLU6's top and sign matter on this grid)"),
    _FIXED_POINT.variant(
        "fixed_point_fixed_step", dict(weight=dict(n=8, delta=2.0 ** -6, quantize_bias=False),
                                       activation=dict(n=8, delta=2.0 ** -3, sign=True)),
        quantization=_fixed_point_spec(8, 8, 2.0 ** -3, signed=True, weight_delta=2.0 ** -6, quantize_bias=False),
        skips_by_default=_SMALL, description="8-bit weights on a given step (computed weights too, "
        "large ones clipped), float biases, signed 8-bit activations"),
    _QDQ.variant("qdq_asymmetric", dict(symmetric=False),
                 quantization=LinearQuantSpec(bits=8, symmetric=False, per_channel=True), skips_by_default=_SMALL,
                 description="Int8 asymmetric QDQ: zero points, the full range [-128, 127]"),
    _QDQ.variant("qdq_int4", dict(n=4, per_channel=False), layers=(Adds((Functions("Round"),)),),
                 quantization=LinearQuantSpec(bits=4, symmetric=True, per_channel=False), skips_by_default=_SMALL,
                 description="4-bit symmetric QDQ from elementary functions, one weight scale per tensor"),
    _LOW_RANK.variant("low_rank_energy", dict(energy=0.9, skip_if_larger=True), layers=(),
                      low_rank=LowRankSpec(energy=0.9), skips_by_default=_SMALL,
                      description="SVD split keeping 90% of the energy, layers that save nothing kept; "
                                  "each split within its discarded-energy bound"),
    _LOW_RANK.variant("low_rank_rank", dict(rank=2, skip_if_larger=True), layers=(),
                      low_rank=LowRankSpec(rank=2), skips_by_default=_SMALL,
                      description="SVD split at rank 2, layers that save nothing kept"),
    _spec(statistics, tolerance=TOLERANCES["exact"]).variant(
        "statistics_outputs", dict(functions=("ReLU", "ReLU6", "Split")), skips_by_default=_SMALL,
        description="Recording taps on inputs of inner-product layers and on ReLU/ReLU6/Split outputs"),
)


def spec_of(name, specs=None):
    """The entry called ``name`` among ``specs`` (default: ours)."""
    return next(s for s in (OURS if specs is None else specs) if s.name == name)
