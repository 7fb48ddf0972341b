"""Evaluate a channel-last graph on CPU, faithfully.

NNabla's CPU kernels refuse ``channel_last=True`` for convolution, deconvolution, pooling,
unpooling and interpolation. :class:`EmulateChannelLast` replaces each such function ``g``
by the same function in channel-first form between transposes::

    g_cl(x, W, b) = to_last( g_cf( to_first(x), to_first_weight(W), b ) )

where ``to_first`` moves the last (channel) axis to where the channel-first function expects
it (``base_axis`` for convolutions, just before the pooled/resized axes otherwise),
``to_last`` moves it back, and a channel-last weight ``(O, K..., I/g)`` (deconvolution:
``(I, K..., O/g)``) becomes ``(O, I/g, K...)`` by a ``Transpose`` in the graph. The axes are
computed here from NNabla's documented layouts, independently of the converter's own
tables and weight transforms, so evaluating a converted graph this way checks them.
Functions with other channel-last forms (FusedConvolution, RoiAlign, ...) cannot be
emulated and raise an error naming them.
"""
from .rewrite import GraphPass, run_passes

__all__ = ["EmulateChannelLast", "cpu_runnable", "needs_emulation"]

# type -> (where the channel-first channel axis is, whether input 1 is a conv weight)
_EMULATED = {
    "Convolution": ("base_axis", True),
    "Deconvolution": ("base_axis", True),
    "MaxPooling": ("kernel", False),
    "AveragePooling": ("kernel", False),
    "SumPooling": ("kernel", False),
    "Unpooling": ("kernel", False),
    "Interpolate": ("output_size", False),
}


def needs_emulation(f):
    """True for a function that runs channel-last (CPU kernels refuse those)."""
    return bool(f.info.args.get("channel_last", False))


def _first_channel_axis(f, ndim):
    where, _ = _EMULATED[f.info.type_name]
    if where == "base_axis":
        return f.info.args["base_axis"] % ndim
    return ndim - 1 - len(f.info.args[where])


def _last_to(ndim, position):
    """Transpose axes putting the last axis at ``position``: (N, H, W, C) -> (N, C, H, W)."""
    axes = list(range(ndim - 1))
    axes.insert(position, ndim - 1)
    return axes


def _back_to_last(ndim, position):
    """Transpose axes putting axis ``position`` last: (N, C, H, W) -> (N, H, W, C)."""
    return [a for a in range(ndim) if a != position] + [position]


class EmulateChannelLast(GraphPass):
    name = "emulate_channel_last"

    def rewrite(self, f, inputs, b, plan):
        if not needs_emulation(f):
            return None
        kind = f.info.type_name
        if kind not in _EMULATED:
            raise NotImplementedError("cannot emulate channel-last {} on CPU ({})".format(
                kind, b.view.describe(f)))
        x = inputs[0]
        ndim = len(x.shape)
        position = _first_channel_axis(f, ndim)
        new_inputs = [b.call("Transpose", [x], {"axes": _last_to(ndim, position)})[0]]
        if _EMULATED[kind][1]:
            w = inputs[1]
            new_inputs.append(b.call("Transpose", [w], {"axes": _last_to(len(w.shape), 1)})[0])
            new_inputs += list(inputs[2:])
        else:
            new_inputs += list(inputs[1:])
        args = dict(f.info.args, channel_last=False)
        outs = b.call(kind, new_inputs, args, len(f.outputs))
        b.note(f, "emulated", "channel-first kernel between transposes")
        return [b.call("Transpose", [y], {"axes": _back_to_last(len(y.shape), position)})[0]
                for y in outs]


def cpu_runnable(outputs, params=None):
    """New output variables (a list) computing ``outputs`` with CPU-capable functions only.

    Without channel-last functions the result is simply a rebuilt, equivalent graph.
    """
    return run_passes([EmulateChannelLast()], outputs, params=params).outputs
