"""Rules on the wiring of a converted graph (what reads what), for the graph-edit modifiers.

Like :mod:`gcverify.core.expectations`, these are data with a ``check(before, after)`` over
NNabla function lists that returns ``(ok, message)``; nothing here runs a graph.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Tuple

from .expectations import INNER_PRODUCT

__all__ = ["Fuses", "NoGradients", "HasBias", "SharesParameters", "Records", "QuantizesInputs",
           "RECORDERS"]

# NNabla's QAT recorders (nnabla.utils.qnn): identity functions that keep a tensor's range
RECORDERS = ("MinMaxMinMaxRecorder", "MinMaxMvaRecorder", "AbsMaxRecorder", "MaxMaxRecorder",
             "MaxMvaRecorder")


def _readers(functions):
    """variable -> the functions (of ``functions``) reading it, in order."""
    readers = {}
    for f in functions:
        for v in f.inputs:
            readers.setdefault(v, []).append(f)
    return readers


def _kind(v):
    return v.parent.info.type_name if v.parent is not None else None


def _parameters(functions):
    """The distinct leaves read in a parameter slot (weights, biases, BN statistics...: the
    slots of ``converters.graph_view.PARAMETER_SLOTS``)."""
    from converters.graph_view import PARAMETER_SLOTS  # on use: this module loads without nnabla
    # NNabla's == and hash follow the data, so a parameter and its need_grad=False stand-in
    # (get_unlinked_variable) are equal: keyed with need_grad too, a graph reading both counts both
    return list({(v, v.need_grad): v for f in functions for i, v in enumerate(f.inputs)
                 if v.parent is None and i in PARAMETER_SLOTS.get(f.info.type_name, ())}.values())


def _counts(functions, types):
    h = Counter(f.info.type_name for f in functions)
    return [h.get(t, 0) for t in types]


@dataclass(frozen=True)
class Fuses:
    """Each chain ``chain[0] -> ... -> chain[-1]`` of the original (every output but the last
    read by the next function alone, which reads operands of one shape) becomes one ``into``:
    n chains, n more ``into``, n fewer of each chain type. Chains sharing their tail (an
    Add2 of two BNs) count once: one of the heads fuses, the other stays."""

    chain: Tuple[str, ...] = ("BatchNormalization", "Add2", "ReLU")
    into: str = "FusedBatchNormalization"

    def matches(self, functions):
        readers, tails = _readers(functions), {}
        for head in (f for f in functions if f.info.type_name == self.chain[0]):
            f, ok = head, True
            for kind in self.chain[1:]:
                nxt = readers.get(f.outputs[0], [])
                if len(f.outputs) != 1 or len(nxt) != 1 or nxt[0].info.type_name != kind \
                        or len({tuple(v.shape) for v in nxt[0].inputs}) != 1:
                    ok = False
                    break
                f = nxt[0]
            if ok:
                tails.setdefault(f, head)
        return len(tails)

    def check(self, before, after):
        n = self.matches(before)
        types = (self.into,) + tuple(dict.fromkeys(self.chain))
        c0, c1 = _counts(before, types), _counts(after, types)
        want = [c0[0] + n] + [c - n * self.chain.count(t) for c, t in zip(c0[1:], types[1:])]
        figures = ", ".join("{} {} -> {}".format(t, a, b) for t, a, b in zip(types, c0, c1))
        return c1 == want, "{}: {} matched; {} (expected each fused into one {})".format(
            " -> ".join(self.chain), n, figures, self.into)


@dataclass(frozen=True)
class NoGradients:
    """No parameter of the converted graph (a leaf in a parameter slot) needs a gradient."""

    def check(self, before, after):
        n0 = sum(v.need_grad for v in _parameters(before))
        n1 = sum(v.need_grad for v in _parameters(after))
        return n1 == 0, "parameters needing a gradient: {} -> {} of {} (expected 0 left)".format(
            n0, n1, len(_parameters(after)))


@dataclass(frozen=True)
class HasBias:
    """Every ``types`` function next to a ``neighbour`` (reading its output, or read by it)
    has a bias: 3 inputs."""

    types: Tuple[str, ...] = ("Convolution", "Deconvolution", "Affine")
    neighbour: str = "BatchNormalization"

    def _without_bias(self, functions):
        readers = _readers(functions)
        return sum(1 for f in functions if f.info.type_name in self.types and len(f.inputs) < 3
                   and (_kind(f.inputs[0]) == self.neighbour or any(
                       g.info.type_name == self.neighbour for g in readers.get(f.outputs[0], []))))

    def check(self, before, after):
        n0, n1 = self._without_bias(before), self._without_bias(after)
        return n1 == 0, "{} without bias next to a {}: {} -> {} (expected 0 left)".format(
            "/".join(self.types), self.neighbour, n0, n1)


@dataclass(frozen=True)
class SharesParameters:
    """The converted graph reads the original's parameters themselves: none new, none copied."""

    def check(self, before, after):
        known = set(_parameters(before))
        new = [v for v in _parameters(after) if v not in known]
        return not new, "parameters read: {} -> {}, {} not the original's (expected 0)".format(
            len(known), len(_parameters(after)), len(new))


def _tensors(functions, types, positions):
    """The distinct variables read at ``positions`` (a slice) by the ``types`` functions."""
    return list({v: None for f in functions if f.info.type_name in types for v in f.inputs[positions]})


@dataclass(frozen=True)
class Records:
    """Every input of every ``types`` function is read through a recorder, one per tensor:
    as many recorders as the original's ``types`` functions read distinct tensors."""

    types: Tuple[str, ...] = INNER_PRODUCT
    recorders: Tuple[str, ...] = RECORDERS

    def check(self, before, after):
        tensors = len(_tensors(before, self.types, slice(None)))
        made = sum(_counts(after, self.recorders))
        unrecorded = sum(_kind(v) not in self.recorders for v in _tensors(after, self.types, slice(None)))
        return made == tensors and not unrecorded, "inputs of {}: {} tensors, {} recorders, {} read " \
            "unrecorded (expected one recorder per tensor)".format(
                "/".join(self.types), tensors, made, unrecorded)


@dataclass(frozen=True)
class QuantizesInputs:
    """QDQ from recorders: every data input and weight of every ``types`` function is read
    through ``DequantizeLinear(QuantizeLinear(.))``, one pair per tensor; every bias through
    its accumulator grid ``Mul2(Round(Div2(b, s)), s)``; no recorder is left."""

    types: Tuple[str, ...] = INNER_PRODUCT
    recorders: Tuple[str, ...] = RECORDERS

    @staticmethod
    def _qdq(v):
        return _kind(v) == "DequantizeLinear" and _kind(v.parent.inputs[0]) == "QuantizeLinear"

    @staticmethod
    def _grid(v):
        return _kind(v) == "Mul2" and _kind(v.parent.inputs[0]) == "Round" \
            and _kind(v.parent.inputs[0].parent.inputs[0]) == "Div2"

    def check(self, before, after):
        tensors = len(_tensors(before, self.types, slice(0, 2)))
        pairs = _counts(after, ("QuantizeLinear", "DequantizeLinear"))
        float_inputs = sum(not self._qdq(v) for v in _tensors(after, self.types, slice(0, 2)))
        float_biases = sum(not self._grid(v) for v in _tensors(after, self.types, slice(2, 3)))
        left = sum(_counts(after, self.recorders))
        ok = pairs == [tensors, tensors] and not float_inputs and not float_biases and not left
        return ok, "inputs and weights of {}: {} tensors, {} QuantizeLinear/{} DequantizeLinear, {} " \
            "read without them, {} biases off their grid, {} recorders left (expected one pair per " \
            "tensor, every bias on its grid, 0 recorders)".format(
                "/".join(self.types), tensors, pairs[0], pairs[1], float_inputs, float_biases, left)
