"""Low-rank decomposition of Affine and Convolution layers by a truncated SVD.

Affine, ``W`` of shape (I, *O) seen as an I x O matrix ``M = A B`` (``quant_math.truncated_svd``)::

    Affine(x, W, b)  ->  Affine(Affine(x, A), B, b)          A: I x r,  B: r x O

Convolution, ``W`` of shape (O, C, *k) seen as an O x (C k) matrix ``M = A B``: the rows of
``B`` are r filters of the original kernel size, ``A`` mixes them per pixel::

    Conv(x, W, b)  ->  Conv1x1(Conv_k(x, B as (r, C, *k)), A as (O, r, 1, ..), b)

The first layer keeps pad/stride/dilation, the second is 1x1 with stride 1, so output shapes
are unchanged. Per output element, the error is the output of the discarded part
``M - A B``, whose Frobenius norm is sqrt(sum of the discarded s_i^2). Parameters go from
``I O`` to ``r (I + O)``; multiply-adds per output position likewise.
Grouped and channel-last convolutions are left alone (noted).
"""
import numpy as np

from . import quant_math
from .fixed_point import check_function_names
from .graph_view import parameter_source
from .rewrite import GraphPass

__all__ = ["LowRank", "inner_product_cost", "LOW_RANK_TYPES"]

LOW_RANK_TYPES = ("Affine", "Convolution")
_COST_TYPES = ("Affine", "Convolution", "Deconvolution", "DepthwiseConvolution",
               "DepthwiseDeconvolution")


def _layer_cost(f):
    """(parameters, multiply-adds) of one inner-product function, from static shapes."""
    kind, w = f.info.type_name, f.inputs[1]
    params = sum(int(np.prod(v.shape)) for v in f.inputs[1:])
    if kind == "Affine":
        batch = int(np.prod(f.inputs[0].shape[:f.info.args.get("base_axis", 1)]))
        return params, batch * int(np.prod(w.shape))
    per_element = int(np.prod(w.shape[1:]))  # one filter slice per output (conv) or input (deconv)
    if kind in ("Convolution", "DepthwiseConvolution"):
        return params, int(np.prod(f.outputs[0].shape)) * per_element
    return params, int(np.prod(f.inputs[0].shape)) * per_element


def inner_product_cost(view):
    """Total ``{"params": ..., "macs": ...}`` of the inner-product layers of a GraphView."""
    params = macs = 0
    seen = set()
    for f in view.functions:
        if f.info.type_name in _COST_TYPES:
            p, m = _layer_cost(f)
            macs += m
            if f.inputs[1] not in seen:  # a shared weight is stored once
                seen.add(f.inputs[1])
                params += p
    return {"params": params, "macs": macs}


class LowRank(GraphPass):
    """Replace Affine/Convolution by two thinner layers from a truncated SVD of the weight.

    Args:
        rank: number of singular values kept (capped at the full rank), or
        energy: the smallest rank keeping this fraction of ``sum s_i^2`` (0 < energy <= 1).
        functions: which of ``LOW_RANK_TYPES`` to decompose.
        skip_if_larger: leave a layer alone (noted) when the two layers would hold as many
            parameters as the original or more (always the case at full rank).
    """

    name = "low_rank"

    def __init__(self, rank=None, energy=None, functions=LOW_RANK_TYPES, skip_if_larger=True):
        quant_math.choose_rank([1.0], rank, energy)  # validates rank / energy now
        self.rank, self.energy = rank, energy
        self.functions = check_function_names(functions, LOW_RANK_TYPES)
        self.skip_if_larger = bool(skip_if_larger)

    def _matrix(self, f):
        """The weight as a matrix (rows: outputs for Convolution, inputs for Affine), or a
        reason to leave the layer."""
        w, args = f.inputs[1], f.info.args
        source = parameter_source(w)  # a parameter seen through a Reshape holds its values
        if source is None:
            return "its weight is computed by the graph"
        if args.get("group", 1) != 1:
            return "grouped convolution (group={})".format(args["group"])
        if args.get("channel_last", False):
            return "channel-last convolution"
        return source.d.reshape(w.shape[0], -1)

    def _saves_nothing(self, r, m):
        """The reason to keep a layer whose rank-r pair would hold as many weights, or ''."""
        if self.skip_if_larger and r * sum(m.shape) >= m.size:
            return "rank {} of {} saves nothing ({} -> {} weights)".format(
                r, min(m.shape), m.size, r * sum(m.shape))
        return ""

    def plan(self, view):
        plans = {}
        for f in view.functions:
            if f.info.type_name not in self.functions:
                continue
            m = self._matrix(f)
            if isinstance(m, str):
                plans[f] = m
                continue
            if self.rank is not None:  # the rank is known before decomposing: skip early
                reason = self._saves_nothing(min(self.rank, min(m.shape)), m)
                if reason:
                    plans[f] = reason
                    continue
            a, b, s = quant_math.truncated_svd(m, self.rank, self.energy)
            plans[f] = self._saves_nothing(a.shape[1], m) or (a, b, s)
        return plans

    def rewrite(self, f, inputs, b, plan):
        spec = plan.get(f)
        if spec is None:
            return None
        if isinstance(spec, str):
            b.note(f, "kept", spec)
            return None
        a, bb, s = spec
        r, w, args = a.shape[1], f.inputs[1], f.info.args
        bias = inputs[2:]
        if f.info.type_name == "Affine":
            first_w = b.parameter(w, a, "low_rank_in")
            second_w = b.parameter(w, bb.reshape((r,) + w.shape[1:]), "low_rank_out")
            ba = {"base_axis": args.get("base_axis", 1)}
            h = b.call("Affine", [inputs[0], first_w], ba)
            out = b.call("Affine", h + [second_w] + bias, ba)
        else:
            spatial = w.ndim - 2
            first_w = b.parameter(w, bb.reshape((r,) + w.shape[1:]), "low_rank_spatial")
            second_w = b.parameter(w, a.reshape(a.shape + (1,) * spatial), "low_rank_pointwise")
            h = b.call("Convolution", [inputs[0], first_w], dict(args))
            pointwise = dict(args, pad=(0,) * spatial, stride=(1,) * spatial,
                             dilation=(1,) * spatial, group=1)
            out = b.call("Convolution", h + [second_w] + bias, pointwise)
        before = _layer_cost(f)
        after = np.sum([_layer_cost(g) for g in (h[0].parent, out[0].parent)], axis=0)
        kept = float(np.sum(s[:r] ** 2) / max(np.sum(s ** 2), 1e-300))
        b.note(f, "decomposed", "rank {} of {} (energy {:.4f}): params {} -> {}, MACs {} -> {}"
               .format(r, s.size, kept, before[0], after[0], before[1], after[1]))
        return out
