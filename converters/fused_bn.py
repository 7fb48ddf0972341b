"""Fuse ``BatchNormalization -> Add2 -> ReLU`` into one FusedBatchNormalization, and back.

``FusedBatchNormalization(x, beta, gamma, mean, var, z)`` computes ``relu(BN(x) + z)`` with the
BN's own arguments (axes, eps, decay_rate, batch_stat), so::

    relu(Add2(BN(x), z))  ==  relu(Add2(z, BN(x)))  ==  FusedBN(x, beta, gamma, mean, var, z)

:class:`FuseBatchNorm` replaces the three functions by one, reading the BN's own statistics and
parameters (shared, not copied), only where that is exact: the BN's output is read by the
Add2 alone and the Add2's by the ReLU alone (otherwise the intermediate values are still
needed), the other Add2 operand has the BN output's shape (FusedBN does not broadcast), and
the BN has one output. A BN without scale or bias gets a new constant gamma 1 or beta 0.
Anything else is kept with the reason. Either Add2 operand may be the BN output; when both
are BNs (a ResNet downsampling block) the first one fuses and the other stays, feeding ``z``.

:class:`UnfuseBatchNorm` is the inverse: ``FusedBN(x, ..., z)`` -> ``ReLU(Add2(BN(x), z))``
(without ``z``: ``ReLU(BN(x))``), again on the same parameter variables.
"""
import numpy as np

from .rewrite import GraphPass

__all__ = ["FuseBatchNorm", "UnfuseBatchNorm"]

_BN_ARGS = ("axes", "decay_rate", "eps", "batch_stat")


def _other_operand(add, y):
    """Index of the Add2 input that is not ``y``, or None when both are ``y``."""
    a, b = add.inputs
    if a == y and b == y:
        return None
    return 1 if a == y else 0


class FuseBatchNorm(GraphPass):
    name = "fuse_bn"

    def plan(self, view):
        blocks, members, kept = {}, set(), {}
        for f in view.functions:
            if f.info.type_name != "BatchNormalization":
                continue
            reason, block = self._match(view, f)
            if block is not None and block[2] in blocks:  # Add2(BN_a(x), BN_b(z)): one fuses
                reason, block = "the other operand's BatchNormalization is fused with this Add2", None
            if block is not None:
                blocks[block[2]] = block  # built at the ReLU, the last of the three
                members.update(block[:2])
            elif reason:
                kept[f] = reason
        return {"blocks": blocks, "members": members, "kept": kept}

    @staticmethod
    def _match(view, bn):
        """(reason, None) when this BN does not start a fusable block; (None, (bn, add, relu, z
        index)) when it does; (None, None) when it is simply not followed by an Add2."""
        y = bn.outputs[0]
        readers = view.consumers(y)
        if not readers or readers[0][0].info.type_name != "Add2":
            return None, None
        add = readers[0][0]
        if len(readers) > 1 or view.is_output(y):
            return "its output is also read by others than the Add2: they need it unfused", None
        if len(bn.outputs) != 1:
            return "it also outputs its batch statistics (output_stat=True)", None
        z_index = _other_operand(add, y)
        if z_index is None:
            return "the Add2 adds its output to itself", None
        if tuple(add.inputs[z_index].shape) != tuple(y.shape):
            return "the Add2 broadcasts {} to {}; FusedBatchNormalization does not".format(
                tuple(add.inputs[z_index].shape), tuple(y.shape)), None
        relu = view.sole_consumer(add.outputs[0])
        if relu is not None and relu.info.type_name == "ReLU":
            return None, (bn, add, relu, z_index)
        if any(g.info.type_name == "ReLU" for g, _ in view.consumers(add.outputs[0])):
            return "the Add2's output is also read by others than the ReLU", None
        return None, None  # BN + Add2 without a ReLU: nothing to fuse into

    def rewrite(self, f, inputs, b, plan):
        if f in plan["kept"]:
            b.note(f, "kept", plan["kept"][f])
            return None
        if f in plan["members"]:
            return inputs[0]  # placeholder: no reader outside the block sees it
        if f not in plan["blocks"]:
            return None
        bn, add, _, z_index = plan["blocks"][f]
        args = bn.info.args
        params = self._parameters(b, bn, args)
        z = b.new(add.inputs[z_index])
        b.note(bn, "fused", "with its Add2 and ReLU into one FusedBatchNormalization")
        return b.call("FusedBatchNormalization", [b.new(bn.inputs[0])] + params + [z],
                      dict({k: args[k] for k in _BN_ARGS}, nonlinearity="relu"))

    @staticmethod
    def _parameters(b, bn, args):
        rest = [b.new(v) for v in bn.inputs[1:]]
        mean = bn.inputs[-2]
        beta = None if args.get("no_bias", False) else rest.pop(0)
        gamma = None if args.get("no_scale", False) else rest.pop(0)
        if beta is None:
            beta = b.parameter(mean, np.zeros(mean.shape, np.float32), "beta", need_grad=False)
        if gamma is None:
            gamma = b.parameter(mean, np.ones(mean.shape, np.float32), "gamma", need_grad=False)
        return [beta, gamma] + rest


class UnfuseBatchNorm(GraphPass):
    name = "unfuse_bn"

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name != "FusedBatchNormalization":
            return None
        args = f.info.args
        if args.get("nonlinearity", "relu") != "relu" or len(f.outputs) != 1:
            b.note(f, "kept", "nonlinearity {!r} with {} outputs: only ReLU with one output is "
                              "unfused".format(args.get("nonlinearity"), len(f.outputs)))
            return None
        bn_args = dict({k: args[k] for k in _BN_ARGS}, no_scale=False, no_bias=False)
        h = b.call("BatchNormalization", inputs[:5], bn_args)
        if len(inputs) > 5:
            h = b.call("Add2", h + [inputs[5]], {"inplace": False})
        b.note(f, "unfused", "BatchNormalization{} + ReLU".format(" + Add2" if len(inputs) > 5 else ""))
        return b.call("ReLU", h, {"inplace": False})
