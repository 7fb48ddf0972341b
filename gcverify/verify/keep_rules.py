"""When may a correct converter keep a function it was asked to convert? The verifier's own
reading of the original graph, written independently of the converters' guards.

A layer rule such as ``Removes(BatchNormalization, may_keep=bn_fold_keep)`` judges every
function that stayed: it passes when the converter reported keeping it with a reason *and*
the rule here finds a reason it cannot be converted (or the model accepts the keep). A keep
the rule finds no reason for is a missed conversion, whatever the converter said; a function
left without any reported reason fails too.

Each rule is ``rule(view, f) -> reason or None`` on the original graph's
:class:`~converters.graph_view.GraphView` and one of its functions: the reason a correct
converter must keep ``f``, or None when ``f`` can be converted.
"""
import numpy as np

from converters.graph_view import parameter_source

from ..core.expectations import INNER_PRODUCT

__all__ = ["bn_inference_keep", "bn_fold_keep", "bn_fold_opposite_keep"]

_INTO_FOLLOWING = ("Convolution", "DepthwiseConvolution", "Affine")


def _bn_roles(f):
    """``{role: variable}`` of a BatchNormalization's inputs, from its no_bias/no_scale args."""
    args, rest = f.info.args, list(f.inputs[1:])
    roles = {}
    for role, absent in (("beta", args.get("no_bias", False)), ("gamma", args.get("no_scale", False))):
        if not absent:
            roles[role] = rest.pop(0)
    roles["mean"], roles["var"] = rest
    return roles



def bn_inference_keep(view, f):
    """A BN with no inference form ``c0 * x + c1`` (any BN converter must keep it)."""
    if f.info.type_name != "BatchNormalization":
        return None
    if f.info.args.get("batch_stat"):
        return "it normalizes with batch statistics (batch_stat=True)"
    roles = _bn_roles(f)
    computed = [r for r, v in roles.items() if parameter_source(v) is None]
    if computed:
        return "its {} is computed by the graph".format(", ".join(computed))
    low = float(np.min(roles["var"].d)) + float(f.info.args.get("eps", 0.0))
    if not low > 0:
        return "its running variance + eps is not positive (min {:g})".format(low)
    return None


def _channel_axis(g, ndim):
    if g.info.args.get("channel_last", False):
        return ndim - 1
    return g.info.args.get("base_axis", 1)


def _axes(f):
    x = f.inputs[0]
    return sorted(a % x.ndim for a in f.info.args["axes"])


def bn_fold_keep(view, f):
    """Folding into the preceding layer: impossible without an inference form, without a
    weighted producer, when the producer's output is read elsewhere too (or is an output),
    when its weight or bias is computed, or when the BN axes are not its channel axes."""
    why = bn_inference_keep(view, f)
    if why:
        return why
    x = f.inputs[0]
    producer = x.parent
    if producer is None or producer not in view:
        return "its input is a graph input or a leaf"
    if producer.info.type_name not in INNER_PRODUCT:
        return "its input comes from {}, which has no weight".format(producer.info.type_name)
    if view.uses(x) != 1:
        return "the output of its {} is read elsewhere too".format(producer.info.type_name)
    if any(parameter_source(v) is None for v in producer.inputs[1:]):
        return "the weight or bias of its {} is computed by the graph".format(producer.info.type_name)
    return _axes_mismatch(f, producer, x.ndim, "its")


def _axes_mismatch(f, layer, ndim, whose):
    """Why BN ``f`` cannot fold into inner-product ``layer`` for its axes (None if it can):
    an Affine takes per-feature factors from base_axis on, a convolution per channel."""
    axes = _axes(f)
    if layer.info.type_name == "Affine":
        if axes[0] < layer.info.args.get("base_axis", 1):
            return "its axes reach before the Affine's base_axis"
    elif axes != [_channel_axis(layer, ndim)]:
        return "its axes {} are not the channel axis of {} {}".format(axes, whose, layer.info.type_name)
    return None


def bn_fold_opposite_keep(view, f):
    """Folding into the following layer: impossible without an inference form, unless its
    output's one reader is a Convolution/DepthwiseConvolution/Affine reading it as data
    with parameter weights and matching axes, and -- with zero padding -- the BN shifts
    nothing (the shift would be missing at the border)."""
    why = bn_inference_keep(view, f)
    if why:
        return why
    y = f.outputs[0]
    readers = view.consumers(y)
    if len(readers) != 1 or view.is_output(y):
        return "its output is read by {} places".format(view.uses(y))
    g, slot = readers[0]
    if g.info.type_name not in _INTO_FOLLOWING or slot != 0:
        return "its output feeds {}, which cannot absorb it".format(g.info.type_name)
    if any(parameter_source(v) is None for v in g.inputs[1:]):
        return "the weight or bias of the following {} is computed".format(g.info.type_name)
    why = _axes_mismatch(f, g, y.ndim, "the following")
    if why:
        return why
    if any(g.info.args.get("pad", ())) and np.any(_shift(f) != 0):
        return "the following {} zero-pads: the shift would be missing at the border".format(g.info.type_name)
    return None


def _shift(f):
    """The BN's ``c1 = beta - gamma * mean / sqrt(var + eps)``, in float64."""
    roles = _bn_roles(f)
    mean, var = roles["mean"].d.astype(np.float64), roles["var"].d.astype(np.float64)
    gamma = roles["gamma"].d.astype(np.float64) if "gamma" in roles else 1.0
    beta = roles["beta"].d.astype(np.float64) if "beta" in roles else 0.0
    return beta - gamma * mean / np.sqrt(var + f.info.args.get("eps", 0.0))
