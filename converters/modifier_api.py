"""Seed 000's Modifier API: ``GraphConverter([modifiers]).convert(y)``.

Each modifier is a thin, named bundle of passes; ``GraphConverter`` runs all of them through
the rewrite engine in order. A modifier keeps only what the seed API exposes after a
conversion (``ChannelLastModifier.inputs_cl``); nothing carries into the next conversion.
"""
import nnabla as nn

from . import bn_fold, layout
from .rewrite import run_passes

__all__ = [
    "GraphConverter", "Modifier", "BatchNormalizationFoldingModifier",
    "BatchNormalizationSelfFoldingModifier", "ChannelLastModifier", "ChannelFirstModifier",
]


class Modifier:
    """A named list of passes. Subclasses build ``self._passes`` in ``__init__``."""

    _passes = ()

    def passes(self):
        return list(self._passes)

    def after_convert(self, result):
        """Called with the :class:`~converters.rewrite.Rewrite` once the conversion is done."""

    def __repr__(self):
        return "{}()".format(type(self).__name__)


def _flatten(modifiers):
    """Modifiers in order from a Modifier or (nested) lists of them."""
    if isinstance(modifiers, Modifier):
        yield modifiers
        return
    try:
        items = None if isinstance(modifiers, (str, bytes, nn.Variable)) else list(modifiers)
    except TypeError:
        items = None
    if items is None:
        raise TypeError("GraphConverter takes Modifier objects; got {!r}".format(modifiers))
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
        passes = [p for m in self._modifiers for p in m.passes()]
        result = run_passes(passes, outputs, params=self._params, context=self._context)
        for m in self._modifiers:
            m.after_convert(result)
        self.last_result = result
        return result.outputs[0] if result.single else result.outputs


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
    (``strict=True``: a BN that cannot be replaced is a ValueError, not kept)."""

    def __init__(self, channel_last=False, strict=False):
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
