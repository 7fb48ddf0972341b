"""Seed-API facades for fixed point, statistics, quantize/dequantize and low rank.

Seed 000 (``GraphConverter([...Modifier()]).convert(y)``) and seed 003
(``...Converter(name=...).convert(y, [x])``) forms of the passes in ``fixed_point``,
``statistics``, ``qdq`` and ``low_rank``. ``FixedPointWeightConverter`` and
``FixedPointActivationConverter`` live in ``converter_api`` with the other seed-003 names.

Calibration in three steps (the recorder belongs to the conversion that made it)::

    stats = GC.StatisticsConverter(name="calib")
    y_calib = stats.convert(y, [x])           # Identity taps: an ordinary, saveable graph
    for batch in data: x.d = batch; stats.recorder.forward(y_calib)   # records via NNabla's hook
    y_q = GC.QuantizeDequantizeConverter(name="int8", ranges=stats.recorder).convert(y, [x])
"""
from . import fixed_point, low_rank, qdq, statistics
from .converter_api import Converter, split_options
from .graph_view import GraphView
from .modifier_api import Modifier

__all__ = [
    "FixedPointWeightModifier", "FixedPointActivationModifier", "StatisticsModifier",
    "QuantizeDequantizeModifier", "LowRankModifier", "StatisticsConverter",
    "QuantizeDequantizeConverter", "LowRankConverter",
]


class FixedPointWeightModifier(Modifier):
    """Fixed-point weights; options as :class:`converters.fixed_point.FixedPointWeights`
    (sign, n, delta, per_channel, quantize_bias, bias_n, bias_delta, functions)."""

    def __init__(self, **options):
        self._passes = [fixed_point.FixedPointWeights(**options)]


class FixedPointActivationModifier(Modifier):
    """Fixed-point activations; options as :class:`converters.fixed_point.FixedPointActivations`
    (functions, n, delta, sign)."""

    def __init__(self, **options):
        self._passes = [fixed_point.FixedPointActivations(**options)]


class _RecordingMixin:
    """Each conversion gets a fresh recorder, exposed as ``recorder`` afterwards."""

    def _init_recording(self, bins, channel_axis, inputs_of, functions):
        self._recorder_args = dict(bins=bins, channel_axis=channel_axis)
        self._tap_args = dict(inputs_of=inputs_of, functions=functions)
        # build once now so that bad arguments fail at construction
        statistics.RecordStatistics(statistics.StatisticsRecorder(**self._recorder_args),
                                    **self._tap_args)
        self.recorder = None

    def passes(self):
        self.recorder = statistics.StatisticsRecorder(**self._recorder_args)
        return [statistics.RecordStatistics(self.recorder, **self._tap_args)]


class StatisticsModifier(_RecordingMixin, Modifier):
    """Record min/max/mean/histogram of chosen tensors during forwards of the converted graph;
    read them from ``recorder`` (a :class:`~converters.statistics.StatisticsRecorder`)."""

    def __init__(self, bins=256, channel_axis=1, inputs_of=tuple(fixed_point.WEIGHT_OUTPUT_AXES),
                 functions=()):
        self._init_recording(bins, channel_axis, inputs_of, functions)


class StatisticsConverter(_RecordingMixin, Converter):
    """Seed-003 form of :class:`StatisticsModifier`; ``recorder`` after ``convert``."""

    def __init__(self, name="statistics", bins=256, channel_axis=1,
                 inputs_of=tuple(fixed_point.WEIGHT_OUTPUT_AXES), functions=(), **kw):
        super().__init__(name=name, **kw)
        self._init_recording(bins, channel_axis, inputs_of, functions)


class QuantizeDequantizeModifier(Modifier):
    """Quantize/dequantize pairs before inner-product layers; options as
    :class:`converters.qdq.QuantizeDequantize` (ranges, n, symmetric, per_channel, functions)."""

    def __init__(self, **options):
        self._passes = [qdq.QuantizeDequantize(**options)]


class QuantizeDequantizeConverter(Converter):
    """Seed-003 form of :class:`QuantizeDequantizeModifier`."""

    def __init__(self, name="qdq", **options):
        kw, options = split_options(options)
        super().__init__(name=name, **kw)
        self._passes = [qdq.QuantizeDequantize(**options)]


class LowRankModifier(Modifier):
    """Affine/Convolution -> two layers from a truncated SVD; options as
    :class:`converters.low_rank.LowRank` (rank or energy, functions, skip_if_larger)."""

    def __init__(self, **options):
        self._passes = [low_rank.LowRank(**options)]


class LowRankConverter(Converter):
    """Seed-003 form of :class:`LowRankModifier`. After ``convert``, ``report`` holds the
    parameters and multiply-adds of the inner-product layers before and after, and the
    per-layer events (rank, kept energy, savings)."""

    def __init__(self, name="low-rank", **options):
        kw, options = split_options(options)
        super().__init__(name=name, **kw)
        self._passes = [low_rank.LowRank(**options)]
        self.report = None

    def convert(self, outputs, inputs=None):
        converted = super().convert(outputs, inputs)
        before = low_rank.inner_product_cost(GraphView(outputs, self.params or {}))
        after = low_rank.inner_product_cost(GraphView(self.last_result.outputs, {}))
        self.report = {
            "params_before": before["params"], "params_after": after["params"],
            "macs_before": before["macs"], "macs_after": after["macs"],
            "params_saved": before["params"] - after["params"],
            "macs_saved": before["macs"] - after["macs"],
            "layers": [e for e in self.last_result.events if e.action in ("decomposed", "kept")],
        }
        return converted
