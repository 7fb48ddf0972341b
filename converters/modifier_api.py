"""Seed 000's Modifier API: ``GraphConverter([modifiers]).convert(y)``.

Each modifier is a thin, named bundle of passes; ``GraphConverter`` runs all of them through
the rewrite engine in order. A modifier keeps only what the seed API exposes after a
conversion (``ChannelLastModifier.inputs_cl``); nothing carries into the next conversion.
User modifiers written for NNabla (``FunctionModifier`` subclasses, NNabla's ``modify(f,
inputs)`` contract) mix freely with ours: each runs as one pass
(:mod:`converters.function_modifier`).
"""
import nnabla as nn

from . import bn_fold, layout
from .function_modifier import FunctionModifier, FunctionModifierPass, is_function_modifier
from .rewrite import GraphPass, run_passes

__all__ = [
    "GraphConverter", "Modifier", "FunctionModifier", "BatchNormalizationFoldingModifier",
    "BatchNormalizationSelfFoldingModifier", "ChannelLastModifier", "ChannelFirstModifier",
]


def check_passes(passes, owner):
    """``passes`` as a list of :class:`~converters.rewrite.GraphPass`; a TypeError naming the
    first item that is not one."""
    passes = [passes] if isinstance(passes, GraphPass) else list(passes)
    for i, p in enumerate(passes):
        if not isinstance(p, GraphPass):
            raise TypeError("{}: passes[{}] is a {}, not a converters.GraphPass".format(
                owner, i, type(p).__name__))
    return passes


class Modifier:
    """A named list of passes: ``Modifier(passes=[...])``, or a subclass that builds
    ``self._passes`` in ``__init__``."""

    _passes = ()

    def __init__(self, passes=()):
        self._passes = check_passes(passes, type(self).__name__)

    def passes(self):
        return list(self._passes)

    def after_convert(self, result):
        """Called with the :class:`~converters.rewrite.Rewrite` once the conversion is done."""

    def __repr__(self):
        return "{}()".format(type(self).__name__)


def _flatten(modifiers):
    """Modifiers in order from a Modifier, a function modifier or (nested) lists of them."""
    if isinstance(modifiers, Modifier) or is_function_modifier(modifiers):
        yield modifiers
        return
    try:
        items = None if isinstance(modifiers, (str, bytes, nn.Variable)) else list(modifiers)
    except TypeError:
        items = None
    if items is None:
        raise TypeError("GraphConverter takes Modifier objects; got {!r} (a modifier is a "
                        "converters.Modifier or has modify(f, inputs))".format(modifiers))
    for m in items:
        yield from _flatten(m)


def _variables(inputs):
    """A list of the given variables; a single Variable is one input (never ``list()`` it:
    NNabla's ``__getitem__`` would slice it)."""
    return [inputs] if isinstance(inputs, nn.Variable) else list(inputs)


class GraphConverter:
    """Convert a graph with the given modifiers.

    Args:
        modifiers: modifiers (nested lists are flattened), applied in order.
        params: ``{name: Variable}`` naming the graph's parameters (default: global scope).
        context: NNabla context for the new functions (default: the current one).
    """

    def __init__(self, modifiers=(), params=None, context=None):
        self._modifiers = list(_flatten(modifiers))
        self._params = params
        self._context = context
        self.last_result = None

    def convert(self, outputs):
        """Returns the converted output(s), a Variable or a list as given."""
        passes = [p for m in self._modifiers for p in _passes_of(m)]
        result = run_passes(passes, outputs, params=self._params, context=self._context)
        for m in self._modifiers:
            if isinstance(m, Modifier):
                m.after_convert(result)
        self.last_result = result
        return result.outputs[0] if result.single else result.outputs


def _passes_of(modifier):
    if isinstance(modifier, Modifier):
        return modifier.passes()
    return [FunctionModifierPass(modifier)]


class BatchNormalizationFoldingModifier(Modifier):
    """Fold BatchNormalization into the preceding Convolution/Deconvolution/Affine
    (or, with ``opposite=True``, into the following one where that is exact). A BN that
    cannot be folded stays; ``GraphConverter.last_result.reasons("kept")`` says why
    (``strict=True``: a ValueError instead)."""

    def __init__(self, opposite=False, channel_last=False, strict=False):
        self._passes = [bn_fold.FoldBatchNorm(opposite=opposite, channel_last=channel_last,
                                              strict=strict)]


class BatchNormalizationSelfFoldingModifier(Modifier):
    """Replace each inference BatchNormalization by one per-channel scale-and-shift
    (``strict=True``: a BN that cannot be replaced is a ValueError, not kept).

    ``name`` is NNabla's scope for its new ``c0``/``c1`` parameters, accepted for compatibility:
    nothing is written into the global scope here; ``last_result.register(m.name)`` puts the
    new parameters (named after each BN's own) under it."""

    def __init__(self, name="bn-self-folding", channel_last=False, strict=False):
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string, got {!r}".format(name))
        self.name = name
        self._passes = [bn_fold.LinearizeBatchNorm(channel_last=channel_last, strict=strict)]


class _LayoutModifier(Modifier):
    """One layout pass in either direction; after ``convert`` the new inputs to feed are
    published under the seed API's attribute name (``inputs_cl`` / ``inputs_cf``)."""

    _attribute, _to_last = None, None

    def __init__(self, inputs, replacements=None, restore_outputs=True):
        self._inputs = _variables(inputs)
        self._passes = [layout.LayoutPass(self._inputs, replacements, to_last=self._to_last,
                                          restore_outputs=restore_outputs)]
        setattr(self, self._attribute, None)

    def after_convert(self, result):
        setattr(self, self._attribute, [result.input_map.get(x, x) for x in self._inputs])


class ChannelLastModifier(_LayoutModifier):
    """NCHW -> NHWC. After ``convert``, ``inputs_cl[i]`` is the channel-last variable to feed
    in place of ``inputs[i]`` (``np.moveaxis(data, 1, -1)``). Outputs keep their original
    layout (one final transpose for a spatial output) unless ``restore_outputs=False``."""

    _attribute, _to_last = "inputs_cl", True

    def __init__(self, inputs, inputs_cl=None, restore_outputs=True):
        super().__init__(inputs, inputs_cl, restore_outputs)


class ChannelFirstModifier(_LayoutModifier):
    """NHWC -> NCHW, the opposite of :class:`ChannelLastModifier`; ``inputs_cf`` likewise."""

    _attribute, _to_last = "inputs_cf", False

    def __init__(self, inputs, inputs_cf=None, restore_outputs=True):
        super().__init__(inputs, inputs_cf, restore_outputs)
