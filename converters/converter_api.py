"""Seed 003's Converter API: ``XConverter(name=...).convert(y, [x])``.

A converter is a named list of passes (``Converter(passes=[...])`` or a subclass). ``convert``
checks that the given inputs really are inputs of the graph, runs the passes through the
rewrite engine and returns the new output(s). New parameters (folded weights) belong to the
converted graph; with ``register=True`` they are also put into NNabla's parameter scope under
``name``. ``SequentialConverter`` chains ours with any object that has ``convert(outputs,
inputs)`` (seed 003: "once you create your own Converters, you can add these converters").
"""
import nnabla as nn

from . import bn_fold, fixed_point
from .graph_view import GraphView, as_outputs
from .modifier_api import check_passes
from .rewrite import Event, GraphPass, Rewrite, run_passes

__all__ = [
    "Converter", "IdentityConverter", "SequentialConverter",
    "BatchNormalizationLinearConverter", "BatchNormalizationFoldedConverter",
    "FixedPointWeightConverter", "FixedPointActivationConverter",
]


class Converter:
    """Base of the seed-003 converters: ``Converter(passes=[...])``, or a subclass that sets
    ``self._passes`` in ``__init__``."""

    _passes = ()

    def __init__(self, name=None, params=None, context=None, register=False, passes=None):
        self.name = name or type(self).__name__
        self.params = params
        self.context = context
        self.register = register
        self.last_result = None
        if passes is not None:
            self._passes = check_passes(passes, self.name)

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


def _as_inputs(inputs):
    return [inputs] if isinstance(inputs, nn.Variable) else list(inputs)  # never list() a Variable


def _check_inputs(outputs, inputs, params):
    view = GraphView(outputs, params)
    leaves = set(view.inputs) | set(view.parameters)
    for i, x in enumerate(_as_inputs(inputs)):
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
    """Applies converters one after another, as one conversion.

    Ours run as one chain of passes; any other object with ``convert(outputs, inputs)`` (a
    user's converter) is called on the graph converted so far, with the graph inputs it now
    reads. ``last_result`` then holds our steps' events and new parameters, one event per user
    converter, and the input map; the variable map stops at a user converter (it has none).
    """

    def __init__(self, converters, name=None, params=None, context=None, register=False):
        super().__init__(name=name or "sequential", params=params, context=context,
                         register=register)
        single = isinstance(converters, Converter) or _is_converter(converters)
        converters = [converters] if single else list(converters)
        for c in converters:
            if not _is_converter(c):
                raise TypeError("SequentialConverter takes Converter objects; got {!r} (a converter "
                                "is anything with convert(outputs, inputs))".format(c))
        self.converters = list(converters)

    def passes(self):
        foreign = [c for c in self.converters if not isinstance(c, Converter)]
        if foreign:
            raise TypeError("{!r} has no passes: it is not a converters.Converter".format(foreign[0]))
        return [p for c in self.converters for p in c.passes()]

    def convert(self, outputs, inputs=None):
        if all(isinstance(c, Converter) for c in self.converters):
            return super().convert(outputs, inputs)
        if inputs is not None:
            _check_inputs(outputs, inputs, self.params)
        single = isinstance(outputs, nn.Variable)
        originals = None if inputs is None else _as_inputs(inputs)
        current, parts = as_outputs(outputs), []
        for group in _groups(self.converters):
            now_inputs = list(GraphView(current, self.params).inputs) if originals is None \
                else _latest_inputs(originals, parts)
            if isinstance(group, list):
                passes = [p for c in group for p in c.passes()]
                parts.append(run_passes(passes, current, params=self.params, context=self.context))
                current = parts[-1].outputs
            else:
                current = as_outputs(group.convert(current, now_inputs))
                parts.append(Rewrite(current, {}, {}, [Event(
                    "user converter {!r}".format(group), "converted", "by a converter outside "
                    "this package: what it did is not recorded")], var_map={}))
        result = _joined(parts, single)
        if self.register and result.new_parameters:
            result.register(self.name)
        self.last_result = result
        return result.outputs[0] if single else result.outputs


def _is_converter(obj):
    return isinstance(obj, Converter) or callable(getattr(obj, "convert", None))


def _groups(converters):
    """Runs of our converters (one list each) and the user converters between them."""
    groups = []
    for c in converters:
        if isinstance(c, Converter):
            if not groups or not isinstance(groups[-1], list):
                groups.append([])
            groups[-1].append(c)
        else:
            groups.append(c)
    return groups


def _latest_inputs(originals, parts):
    """The variables standing for the original inputs after the steps so far."""
    latest = list(originals)
    for r in parts:
        latest = [r.input_map.get(x, x) for x in latest]
    return latest


def _joined(parts, single):
    input_map, new_params, events = {}, {}, []
    for r in parts:  # compose: original input -> its latest replacement
        replaced = set(input_map.values())
        input_map = {k: r.input_map.get(v, v) for k, v in input_map.items()}
        input_map.update((k, v) for k, v in r.input_map.items() if k not in replaced)
        new_params.update(r.new_parameters)
        events.extend(r.events)
    return Rewrite(parts[-1].outputs, input_map, new_params, events, single=single, var_map={})


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
    """Activations (the ReLU, ELU, sigmoid and tanh families by default) get fixed-point outputs."""

    def __init__(self, name="fixed-point-activation", **options):
        kw, options = split_options(options)
        super().__init__(name=name, **kw)
        self._passes = [fixed_point.FixedPointActivations(**options)]
