"""Seed 003's Converter API: ``XConverter(name=...).convert(y, [x])``.

A converter is a named list of passes. ``convert`` checks that the given inputs really are
inputs of the graph, runs the passes through the rewrite engine and returns the new
output(s). New parameters (folded weights) belong to the converted graph; with
``register=True`` they are also put into NNabla's parameter scope under ``name``.
"""
import nnabla as nn

from . import bn_fold, fixed_point
from .graph_view import GraphView
from .rewrite import GraphPass, run_passes

__all__ = [
    "Converter", "IdentityConverter", "SequentialConverter",
    "BatchNormalizationLinearConverter", "BatchNormalizationFoldedConverter",
    "FixedPointWeightConverter", "FixedPointActivationConverter",
]


class Converter:
    """Base of the seed-003 converters. Subclasses set ``self._passes`` in ``__init__``."""

    _passes = ()

    def __init__(self, name=None, params=None, context=None, register=False):
        self.name = name or type(self).__name__
        self.params = params
        self.context = context
        self.register = register
        self.last_result = None

    def passes(self):
        return list(self._passes)

    def convert(self, outputs, inputs=None):
        if inputs is not None:
            _check_inputs(outputs, inputs, self.params)
        result = run_passes(self.passes(), outputs, params=self.params, context=self.context)
        if self.register and result.new_parameters:
            result.register(self.name)
        self.last_result = result
        return result.outputs[0] if result.single else result.outputs

    def __repr__(self):
        return "{}(name={!r})".format(type(self).__name__, self.name)


CONVERTER_KEYS = ("params", "context", "register")


def split_options(options):
    """Converter keywords (params, context, register) apart from the pass options."""
    return {k: options.pop(k) for k in CONVERTER_KEYS if k in options}, options


def _check_inputs(outputs, inputs, params):
    view = GraphView(outputs, params)
    leaves = set(view.inputs) | set(view.parameters)
    inputs = [inputs] if isinstance(inputs, nn.Variable) else list(inputs)  # never list() a Variable
    for i, x in enumerate(inputs):
        if not isinstance(x, nn.Variable):
            raise TypeError("inputs[{}] is a {}, not an nnabla.Variable".format(i, type(x).__name__))
        if x not in leaves:
            raise ValueError("inputs[{}] (shape {}) is not an input of the graph being "
                             "converted".format(i, getattr(x, "shape", "?")))


class IdentityConverter(Converter):
    """Rebuilds the graph unchanged: a fresh copy sharing inputs and parameters."""

    def __init__(self, name="identity", **kw):
        super().__init__(name=name, **kw)
        self._passes = [GraphPass()]  # the base pass copies every function


class SequentialConverter(Converter):
    """Applies converters one after another, as one conversion."""

    def __init__(self, converters, name=None, params=None, context=None, register=False):
        super().__init__(name=name or "sequential", params=params, context=context,
                         register=register)
        converters = [converters] if isinstance(converters, Converter) else list(converters)
        for c in converters:
            if not isinstance(c, Converter):
                raise TypeError("SequentialConverter takes Converter objects; got {!r}".format(c))
        self.converters = list(converters)

    def passes(self):
        return [p for c in self.converters for p in c.passes()]


class BatchNormalizationLinearConverter(Converter):
    """BN -> one per-channel ``c0 * x + c1`` (the seed's linear form)."""

    def __init__(self, name="bn-linear", channel_last=False, strict=False, **kw):
        super().__init__(name=name, **kw)
        self._passes = [bn_fold.LinearizeBatchNorm(channel_last=channel_last, strict=strict)]


class BatchNormalizationFoldedConverter(Converter):
    """BN folded into the preceding Convolution/Deconvolution/Affine weights and bias (the
    following layer with ``opposite=True``, where exact). A BN that cannot be folded stays,
    with its reason in ``last_result.reasons("kept")`` (``strict=True``: a ValueError instead)."""

    def __init__(self, name="bn-folded", opposite=False, channel_last=False, strict=False, **kw):
        super().__init__(name=name, **kw)
        self._passes = [bn_fold.FoldBatchNorm(opposite=opposite, channel_last=channel_last,
                                              strict=strict)]


class FixedPointWeightConverter(Converter):
    """Affine/Convolution/Deconvolution get fixed-point weights and biases."""

    def __init__(self, name="fixed-point-weight", **options):
        kw, options = split_options(options)
        super().__init__(name=name, **kw)
        self._passes = [fixed_point.FixedPointWeights(**options)]


class FixedPointActivationConverter(Converter):
    """ReLU (and other listed activations) become fixed-point quantized activations."""

    def __init__(self, name="fixed-point-activation", **options):
        kw, options = split_options(options)
        super().__init__(name=name, **kw)
        self._passes = [fixed_point.FixedPointActivations(**options)]
