"""Run a converted graph on the original model's data; read its outputs in the original layout.

Used alike by the matrix (:mod:`gcverify.verify.case`), the fixtures (:mod:`gcverify.api`) and
the fuzzer (:mod:`gcverify.fuzz.harness`). A :class:`~gcverify.core.conversion.Conversion` states how its graph
relates to the original, with ``transpose`` axes ``p`` (None: the identity)::

    fed_i      = transpose(data_i, input_perms[i])        (or input_data[i] as given)
    original_i = transpose(out_i, argsort(output_perms[i]))

since output ``i`` holds ``transpose(original_i, output_perms[i])``. A conversion that
states nothing is fed and read as is; :func:`guess_layouts` fills unstated layouts from the
shapes (an input or output in the channel-last form of the original's shape), for
converters that only return variables (NNabla's peers, users' functions). The fuzzer does
not guess: a converter under fuzz must say what it moved.

NNabla's CPU kernels refuse ``channel_last=True`` convolutions and pooling, so on CPU a
graph holding such functions runs through ``converters.layout_emulation.cpu_runnable``.
"""
import nnabla as nn
import numpy as np

from converters.graph_view import GraphView

from ..core.layouts import guess_perm
from ..core.running import evaluate, feed

__all__ = ["guess_layouts", "input_arrays", "feed", "feed_conversion",
           "has_channel_last", "runnable_outputs", "to_original_layouts", "evaluate",
           "run_conversion", "on_cpu"]


def guess_layouts(conversion, model):
    """Fill the layouts ``conversion`` does not state from shapes (see the module docstring);
    returns ``conversion`` (changed in place)."""
    if conversion.input_perms is None and conversion.input_data is None:
        conversion.input_perms = [guess_perm(x.shape, d.shape)
                                  for x, d in zip(conversion.inputs, model.input_data)]
    if conversion.output_perms is None:
        conversion.output_perms = [guess_perm(o.shape, r.shape)
                                   for o, r in zip(conversion.outputs, model.outputs)]
    return conversion


def input_arrays(conversion, data):
    """The arrays to feed ``conversion.inputs``: ``input_data``, else ``data`` moved by
    ``input_perms``."""
    if conversion.input_data is not None:
        return list(conversion.input_data)
    perms = conversion.input_perms or ()
    return [np.transpose(d, perms[i]) if i < len(perms) and perms[i] is not None else d
            for i, d in enumerate(data)]


def feed_conversion(conversion, data):
    """Feed the converted graph the model's ``data`` (moved where its inputs moved)."""
    feed(conversion.inputs, input_arrays(conversion, data), "converted input")


def has_channel_last(outputs, functions=None):
    """True when a function computing ``outputs`` (``functions``, when at hand) runs channel-last."""
    if functions is None:
        functions = GraphView(outputs, {}).functions
    return any(f.info.args.get("channel_last") is True for f in functions)


def on_cpu():
    return nn.get_current_context().backend[0].startswith("cpu")


def runnable_outputs(conversion, cpu, emulate=False, functions=None):
    """The outputs to forward: ``conversion.outputs`` themselves, or on CPU (``cpu``) with
    channel-last functions (or ``emulate``) an emulation through transposes. ``functions``:
    the converted graph's functions, when the caller has them already."""
    if not cpu or not (emulate or has_channel_last(conversion.outputs, functions)):
        return conversion.outputs
    try:
        from converters.layout_emulation import cpu_runnable
    except ImportError as e:
        raise RuntimeError("cannot evaluate a channel-last graph on cpu: "
                           "converters.layout_emulation.cpu_runnable is not available ({})".format(e))
    return list(cpu_runnable(conversion.outputs, conversion.parameters))


def to_original_layouts(arrays, perms):
    """``arrays[i]`` transposed back by ``perms[i]`` (None, or a rank that does not fit: as is)."""
    arrays = list(arrays)
    for i, perm in enumerate(perms or ()):
        if perm is not None and i < len(arrays) and arrays[i].ndim == len(perm):
            arrays[i] = np.transpose(arrays[i], np.argsort(perm))
    return arrays


def run_conversion(conversion, data, outputs=None):
    """The converted graph's outputs on the model's ``data``, in the original layout.
    ``outputs``: what to forward instead of ``conversion.outputs`` (see
    :func:`runnable_outputs`)."""
    outputs = conversion.outputs if outputs is None else outputs
    actual = evaluate(outputs, conversion.inputs, input_arrays(conversion, data), "converted input")
    return to_original_layouts(actual, conversion.output_perms)
