"""The kinds of layout behaviour a function can have (TVM ConvertLayout's op classes).

A rule looks at one function of the original graph and the layouts (permutations, see
:mod:`.layout_math`) its inputs are held in by the new graph, and returns a
:class:`Decision`: which layout (or :class:`~.layout_math.OperandMap`) each input must be
brought to, which function with which arguments to build, and the layouts of its outputs.
Rules never build anything; the pass does, so every rule is checked by the same code.

- :class:`Agnostic`: elementwise on one tensor; works in any layout, output keeps it.
- :class:`Elementwise`: several operands of the same rank (broadcasting allowed) are
  brought to one common layout, so a per-channel ``(1, C, 1, 1)`` operand becomes
  ``(1, 1, 1, C)``; operands of another rank fence the function.
- :class:`Adjust` subclasses: argument rewrites (axis, axes, slices, pads, transposes,
  Affine weight rows, BatchNormalization axes and statistics, reshapes that only add or
  remove size-1 axes).
- :class:`Decides`: convolution/pooling-like functions that have a ``channel_last`` flag;
  they are switched to the target layout, their weights transformed to match;
  :class:`Depthwise`: depthwise ones become grouped channel-last ones (and come back).
- :class:`Fence`: everything else sees exactly the original layout, through transposes.
"""
from collections import namedtuple

from . import layout_math as lm

__all__ = ["Decision", "Direction", "Rule", "Agnostic", "Elementwise", "Axis", "Axes",
           "Reduce", "Reshape", "Split", "Stack", "Slice", "Pad", "Transpose", "BatchNorm", "PReLU",
           "Affine", "Decides", "Depthwise", "Fence", "FENCE"]

# needs: per input a permutation (bring to that layout) or an OperandMap (applied to the
# original-layout tensor); outs: output layouts; type_name None means "output = input 0";
# sources: original variables to read instead of f.inputs; graph_ops: input indices whose
# OperandMap must be built with graph functions even for a parameter (keeps it visible).
Decision = namedtuple("Decision", "type_name args needs outs action reason sources graph_ops")


SAME = "same"  # type_name meaning "the function's own type"


def decision(f, args=None, needs=None, outs=None, action="adjusted", reason="",
             type_name=SAME, sources=None, graph_ops=()):
    kind = f.info.type_name if type_name == SAME else type_name
    args = dict(f.info.args if args is None else args)
    return Decision(kind, args, list(needs), list(outs), action, reason, sources, tuple(graph_ops))


class Direction:
    """Where the pass is going: ``to_last`` (NC... -> N...C) or back to channel-first."""

    def __init__(self, to_last, view):
        self.to_last = bool(to_last)
        self.view = view
        self.word = "channel-last" if to_last else "channel-first"
        self.suffix = "cl" if to_last else "cf"

    def flip_perm(self, ndim, first):
        """Layout after switching a tensor whose channel-first channel axis is ``first``."""
        return lm.move_axis_perm(ndim, first, ndim - 1) if self.to_last else \
            lm.move_axis_perm(ndim, ndim - 1, first)


class Rule:
    kind = "rule"

    def infer(self, f, perms, d):
        raise NotImplementedError


class Fence(Rule):
    """The function sees the original layout: every input back to it, outputs as original."""

    kind = "fenced"

    def __init__(self, reason="no layout rule"):
        self.reason = reason

    def infer(self, f, perms, d, reason=None):
        needs = [lm.identity(len(p)) for p in perms]
        outs = [lm.identity(len(o.shape)) for o in f.outputs]
        return decision(f, needs=needs, outs=outs, action="fenced",
                        reason="{} for {}".format(reason or self.reason, f.info.type_name))


FENCE = Fence()


class Agnostic(Rule):
    """Elementwise on its first input: any layout, the output keeps it."""

    kind = "agnostic"

    def infer(self, f, perms, d):
        p = perms[0]
        return decision(f, needs=perms, outs=[p] * len(f.outputs), action=None)


def _common(perms, ndim):
    """The first non-identity layout among operands of rank ``ndim`` (else identity)."""
    return next((p for p in perms if len(p) == ndim and not lm.is_identity(p)), lm.identity(ndim))


class Elementwise(Rule):
    """Same-rank operands (broadcasting allowed) brought to one common layout."""

    kind = "agnostic"

    def infer(self, f, perms, d):
        ndim = len(f.outputs[0].shape)
        if any(len(p) != ndim for p in perms):
            return FENCE.infer(f, perms, d, "operands of different rank")
        p = _common(perms, ndim)
        return decision(f, needs=[p] * len(perms), outs=[p] * len(f.outputs), action=None)


class Adjust(Rule):
    """Single- or multi-input functions whose arguments name axes of the original layout."""

    kind = "adjusted"
    aligned = False  # all inputs brought to input 0's layout (Concatenate, Stack)

    def infer(self, f, perms, d):
        p = _common(perms, len(perms[0])) if self.aligned else perms[0]
        if self.aligned and any(len(q) != len(p) for q in perms):
            return FENCE.infer(f, perms, d, "inputs of different rank")
        needs = [p] * len(perms) if self.aligned else [p] + list(perms[1:])
        out = self.adjust(f, dict(f.info.args), p, lm.invert(p), d)
        if out is None:
            return FENCE.infer(f, perms, d, "arguments not adjustable")
        if isinstance(out, Decision):
            return out
        args, outs = out
        return decision(f, args=args, needs=needs, outs=outs,
                        reason="axes of {} rewritten for {}".format(f.info.type_name, d.word))

    def adjust(self, f, args, p, inv, d):
        """Return (new args, output layouts), a full Decision, or None to fence."""
        raise NotImplementedError


class Axis(Adjust):
    """One ``axis`` argument (Softmax, LogSoftmax, CumSum, CumProd, Sort, Concatenate)."""

    def __init__(self, name="axis", aligned=False):
        self.name, self.aligned = name, aligned

    def adjust(self, f, args, p, inv, d):
        args[self.name] = inv[args[self.name] % len(p)]
        return args, [p] * len(f.outputs)


class Axes(Adjust):
    """An ``axes`` list argument that keeps the rank (Flip)."""

    def __init__(self, name="axes"):
        self.name = name

    def adjust(self, f, args, p, inv, d):
        args[self.name] = [inv[a % len(p)] for a in args[self.name]]
        return args, [p] * len(f.outputs)


class Reduce(Adjust):
    """Sum/Mean/Max/Min/Prod over ``axes``; without keep_dims the reduced axes disappear."""

    def adjust(self, f, args, p, inv, d):
        axes = [a % len(p) for a in args["axes"]]
        if (args.get("with_index") or args.get("only_index")) and len(axes) > 1:
            return None  # a flat index over several axes depends on their order
        args["axes"] = sorted(inv[a] for a in axes)
        out = p if args.get("keep_dims") else lm.drop_axes(p, axes)
        return args, [out] * len(f.outputs)


class Split(Adjust):
    def adjust(self, f, args, p, inv, d):
        axis = args["axis"] % len(p)
        args["axis"] = inv[axis]
        return args, [lm.drop_axes(p, [axis])] * len(f.outputs)


class Stack(Adjust):
    aligned = True

    def adjust(self, f, args, p, inv, d):
        axis = args["axis"] % (len(p) + 1)
        args["axis"] = axis
        return args, [lm.insert_axis(p, axis)]


class Slice(Adjust):
    """start/stop/step cover the trailing axes; made full rank, then reordered."""

    def adjust(self, f, args, p, inv, d):
        shape, n = f.inputs[0].shape, len(p)
        args["start"] = lm.permute_values(lm.expand_trailing(args["start"], n, 0), p)
        args["stop"] = lm.permute_values(lm.expand_trailing(args["stop"], n, lambda i: shape[i]), p)
        args["step"] = lm.permute_values(lm.expand_trailing(args["step"], n, 1), p)
        return args, [p]


class Pad(Adjust):
    """pad_width is (before, after) pairs for the trailing axes; made full rank, reordered."""

    def adjust(self, f, args, p, inv, d):
        width, n = list(args["pad_width"]), len(p)
        pairs = [tuple(width[i:i + 2]) for i in range(0, len(width), 2)]
        pairs = lm.permute_values(lm.expand_trailing(pairs, n, (0, 0)), p)
        args["pad_width"] = [w for pair in pairs for w in pair]
        return args, [p]


class Transpose(Adjust):
    """Produce the original output layout directly; dropped when nothing is left to do."""

    def adjust(self, f, args, p, inv, d):
        axes = tuple(inv[a] for a in args["axes"])
        out = lm.identity(len(p))
        if lm.is_identity(axes):
            return decision(f, needs=[p], outs=[out], type_name=None, action="removed",
                            reason="the transpose is absorbed by the {} layout".format(d.word))
        args["axes"] = list(axes)
        return args, [out]


class Reshape(Rule):
    """A reshape that only adds or removes size-1 axes (the unsqueeze around 1D pooling) keeps
    the layout of the other axes; any other reshape reads the original order (fenced)."""

    kind = "adjusted"

    def infer(self, f, perms, d):
        p, ins, outs = perms[0], f.inputs[0].shape, f.outputs[0].shape
        big_in = [a for a in range(len(ins)) if ins[a] != 1]
        big_out = [a for a in range(len(outs)) if outs[a] != 1]
        if [ins[a] for a in big_in] != [outs[a] for a in big_out]:
            return FENCE.infer(f, perms, d, "reshape across axes")
        to_out = dict(zip(big_in, big_out))
        q = [to_out[a] for a in p if a in to_out]
        for a in range(len(outs)):  # size-1 axes: leading ones first, others before the next axis
            if outs[a] != 1:
                continue
            after = [x for x in big_out if x > a]
            before = [x for x in big_out if x < a]
            q.insert(0 if not before else (q.index(after[0]) if after else len(q)), a)
        args = dict(f.info.args, shape=[outs[a] for a in q])
        return decision(f, args=args, needs=[p], outs=[tuple(q)],
                        reason="size-1 axes reshaped in {} order".format(d.word))


class BatchNorm(Adjust):
    """(Fused)BatchNormalization: axes rewritten; statistics and z follow the input layout."""

    def infer(self, f, perms, d):
        p = perms[0]
        if any(len(q) != len(p) for q in perms[1:]):
            return FENCE.infer(f, perms, d, "statistics of another rank")
        inv = lm.invert(p)
        args = dict(f.info.args)
        args["axes"] = sorted(inv[a % len(p)] for a in args["axes"])
        return decision(f, args=args, needs=[p] * len(perms), outs=[p] * len(f.outputs),
                        reason="axes {} -> {} for {}".format(f.info.args["axes"], args["axes"], d.word))


class PReLU(Adjust):
    def adjust(self, f, args, p, inv, d):
        if len(f.inputs[1].shape) > 1:
            return None
        args["base_axis"] = inv[args["base_axis"] % len(p)]
        return args, [p]


class Affine(Rule):
    """Flattening a re-laid-out input visits positions in another order: permute the rows."""

    kind = "adjusted"

    def infer(self, f, perms, d):
        p, base = perms[0], f.info.args["base_axis"]
        if not lm.is_identity(p[:base]) or any(not lm.is_identity(q) for q in perms[1:]):
            return FENCE.infer(f, perms, d, "batch axes moved")
        w = f.inputs[1]
        rows = lm.affine_rows(w.shape, f.inputs[0].shape, base, p)
        needs = [p, rows] + list(perms[2:])
        return decision(f, needs=needs, outs=[lm.identity(len(f.outputs[0].shape))],
                        reason="weight rows permuted for a {} input".format(d.word))


class Decides(Rule):
    """Functions with a ``channel_last`` flag. ``spatial`` says where their channel axis is:
    ``"conv"`` at ``base_axis``, else just before the ``len(args[spatial])`` spatial axes."""

    kind = "converted"

    def __init__(self, spatial="conv", weighted=False):
        self.spatial, self.weighted = spatial, weighted

    def channel_axis(self, f, ndim):
        """Where the channel axis is in the channel-first spelling of ``f``."""
        if self.spatial == "conv":
            return f.info.args["base_axis"] % ndim
        return ndim - len(f.info.args[self.spatial]) - 1

    def infer(self, f, perms, d):
        args, n = dict(f.info.args), len(f.inputs[0].shape)
        if bool(args.get("channel_last", False)) == d.to_last:
            return FENCE.infer(f, perms, d, "already " + d.word)
        first = self.channel_axis(f, n)
        if first < 1 or n - first < 2:
            return FENCE.infer(f, perms, d, "no batch or spatial axis")
        target = d.flip_perm(n, first)
        if self.spatial != "conv" and self.pools_in_place(f, perms[0], d):
            target = perms[0]  # e.g. (N, D, H, W, C) pooled over (H, W): no transpose needed
        if self.weighted and not d.to_last:
            depthwise = self.back_to_depthwise(f, args, target, d)
            if depthwise is not None:
                return depthwise
        args["channel_last"] = d.to_last
        needs = [target] + list(perms[1:])
        if self.weighted:  # weight (O, I/g, K...) <-> (O, K..., I/g); bias stays
            needs[1] = lm.OperandMap(perm=d.flip_perm(len(f.inputs[1].shape), 1))
        return decision(f, args=args, needs=needs, outs=[target] * len(f.outputs),
                        action="converted", reason="now " + d.word)

    @staticmethod
    def pools_in_place(f, p, d):
        """Pooling only needs its pooled axes, in order, just before the last axis (channel-
        last) or last (channel-first); the other axes are batch-like in any order."""
        n, k = len(p), len(f.info.args.get("kernel", f.info.args.get("output_size")))
        start = n - k - 1 if f.info.args.get("channel_last") else n - k
        pooled = tuple(range(start, start + k))
        return tuple(p[n - k - 1:n - 1] if d.to_last else p[n - k:]) == pooled

    def back_to_depthwise(self, f, args, target, d):
        """A grouped convolution made from a depthwise one (weight = Reshape of a depthwise
        weight, see :class:`Depthwise`) becomes that depthwise function again, exactly."""
        w = f.inputs[1]
        maker = w.parent
        if maker is None or maker.info.type_name != "Reshape" or w.shape[-1] != 1:
            return None
        source = maker.inputs[0]
        k = len(w.shape) - 2
        if tuple(source.shape) != tuple(w.shape[:-1]) or k > 2:
            return None
        channels = f.inputs[0].shape[-1]
        common = {key: args[key] for key in ("base_axis", "pad", "stride", "dilation")}
        if f.info.type_name == "Convolution" and args["group"] == channels:
            kind, common["multiplier"] = "DepthwiseConvolution", w.shape[0] // channels
        elif f.info.type_name == "Deconvolution" and not any(args.get("output_padding", ())):
            kind, common["divisor"] = "DepthwiseDeconvolution", channels // args["group"]
        else:
            return None
        needs = [target, lm.identity(len(source.shape))] + [lm.identity(1)] * (len(f.inputs) - 2)
        sources = [f.inputs[0], source] + list(f.inputs[2:])
        return decision(f, args=common, needs=needs, outs=[target], type_name=kind,
                        action="converted", reason="grouped convolution back to " + kind,
                        sources=sources)


class Depthwise(Decides):
    """DepthwiseConvolution/-Deconvolution have no channel_last flag; their channel-last
    spelling is a grouped Convolution/Deconvolution whose weight is a Reshape of the depthwise
    weight (a size-1 axis appended: ``(C*m, K...) -> (C*m, K..., 1)``), kept as a graph
    function so the way back (:meth:`Decides.back_to_depthwise`) is exact."""

    def infer(self, f, perms, d):
        if not d.to_last:
            return FENCE.infer(f, perms, d, "already channel-first")
        args, x, w = f.info.args, f.inputs[0], f.inputs[1]
        n, first = len(x.shape), f.info.args["base_axis"] % len(x.shape)
        if first < 1 or n - first < 2:
            return FENCE.infer(f, perms, d, "no batch or spatial axis")
        channels, k = x.shape[first], len(w.shape) - 1
        new = {key: args[key] for key in ("base_axis", "pad", "stride", "dilation")}
        new["channel_last"] = True
        if f.info.type_name == "DepthwiseConvolution":
            kind, new["group"] = "Convolution", channels
        else:
            kind, new["group"] = "Deconvolution", channels // args["divisor"]
            new["output_padding"] = [0] * k
        target = d.flip_perm(n, first)
        needs = [target, lm.OperandMap(post=tuple(w.shape) + (1,))] + list(perms[2:])
        return decision(f, args=new, needs=needs, outs=[target], type_name=kind,
                        action="converted", reason="depthwise as a grouped channel-last " + kind,
                        graph_ops=(1,))
