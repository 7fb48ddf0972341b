"""What the verifier derives from a model by its own code: training twins and independent references.

Some rows convert a model into something whose numbers differ from the original's by design
(pruned channels, removed functions, quantized tensors), and some need a model the zoo does
not hold (BatchNormalization in training mode). Both are derived here, from any model, with
code that shares nothing with the converter under test but the rewrite engine every faithful
copy uses (:mod:`.model_copy`):

- :func:`training_twin`: the model's graph with every BatchNormalization on batch statistics
  (``batch_stat=True``), optionally with a Dropout before the inputs of some layers: the
  graph a user trains, whose test-mode form is the model itself.
- :class:`WithoutFunctions`: a reference, the model computed as if the functions of some
  types were not there (each one's output replaced by its input 0).
- :class:`PrunedChannels`: a reference, the model with the output *of* every inner-product
  layer multiplied by a 0/1 mask over its output channels, 0 where the weights producing the
  channel have a sum of squares <= the threshold. A pruner zeroes those channels' weights
  and biases, so that their outputs are exactly 0 and the others exactly as they were: the
  same numbers, bit for bit. The norms are computed here, per layer kind, from the layout
  of its weight (:func:`output_channel_sq_norms`), not by the pruner's code.
- :class:`QuantizedInputs`: a reference for QAT's quantize/dequantize graph, the model with
  the inputs of its inner-product layers fake-quantized at the scales of the ranges measured
  here on the model's own forward (what a recorder calibrated on the same data keeps).

A reference is a ``reference(model) -> [numpy array per output]`` (the ``reference`` hook of
:class:`~gcverify.core.registry.ConverterSpec`); it reads the model's leaves and never
changes them.
"""
from dataclasses import dataclass
from typing import Tuple

import nnabla as nn
import numpy as np
from nnabla import dtypes

from converters.graph_view import parameter_source
from converters.rewrite import GraphPass, run_passes

from ..core.expectations import INNER_PRODUCT
from ..core.model import Model
from ..core.running import evaluate, feed

__all__ = ["training_twin", "WithoutFunctions", "PrunedChannels", "QuantizedInputs",
           "output_channel_sq_norms", "channel_axis"]


class _Derive(GraphPass):
    """Rebuild a graph with ``change(f, inputs, b)`` deciding each function (None: copy it)."""

    name = "verifier_derivation"

    def __init__(self, change):
        self.change = change

    def rewrite(self, f, inputs, b, plan):
        return self.change(f, inputs, b)


def _derive(model, change):
    return run_passes([_Derive(change)], list(model.outputs), params=model.params).outputs


def training_twin(model, dropout_before=(), p=0.5):
    """``model`` as trained: every BatchNormalization with ``batch_stat=True``, and a Dropout(p)
    on input 0 of every function of a type in ``dropout_before``. Same inputs, same leaves
    (running a batch-statistics BN updates its running statistics: convert it, do not run it)."""
    def change(f, inputs, b):
        kind = f.info.type_name
        if kind == "BatchNormalization":
            return b.call(kind, inputs, dict(f.info.args, batch_stat=True), len(f.outputs))
        if kind in dropout_before:
            dropped = b.call("Dropout", inputs[:1], {"p": float(p), "seed": -1})
            return b.call(kind, dropped + list(inputs[1:]), f.info.args, len(f.outputs))
        return None
    return Model(model.name + "-training", list(model.inputs), list(_derive(model, change)),
                 list(model.input_data), dict(model.params), description="training twin of " + model.name)


@dataclass(frozen=True)
class WithoutFunctions:
    """Reference: the model computed without the functions of ``types`` (input 0 passes)."""

    types: Tuple[str, ...]

    def __call__(self, model):
        outputs = _derive(model, lambda f, inputs, b: inputs[0] if f.info.type_name in self.types else None)
        return evaluate(outputs, model.inputs, model.input_data)


def channel_axis(f):
    """The axis of ``f``'s output holding its output channels (the first of them for Affine)."""
    base = f.info.args.get("base_axis", 1)
    if f.info.type_name in ("Convolution", "Deconvolution") and f.info.args.get("channel_last", False):
        return f.outputs[0].ndim - 1
    return base



def output_channel_sq_norms(f):
    """Per output channel of inner-product layer ``f``, the sum of squares of the weights that
    produce it, shaped like the channel axes of ``f``'s output (Affine: its output shape)."""
    kind, args = f.info.type_name, f.info.args
    w = np.square(parameter_source(f.inputs[1]).d.reshape(f.inputs[1].shape).astype(np.float64))
    if kind in ("Convolution", "DepthwiseConvolution"):  # W[o] makes output channel o
        return w.reshape(w.shape[0], -1).sum(axis=1)
    if kind == "Deconvolution":  # W (I, O/g, k...): channel g*(O/g)+j reads group g's inputs, column j
        if args.get("channel_last", False):
            w = np.moveaxis(w, -1, 1)
        g = args.get("group", 1)
        per_group = [w[i * (w.shape[0] // g):(i + 1) * (w.shape[0] // g)] for i in range(g)]
        return np.concatenate([part.sum(axis=0).reshape(part.shape[1], -1).sum(axis=1)
                               for part in per_group])
    if kind == "DepthwiseDeconvolution":  # W (C, k...): output c sums inputs c*d .. c*d+d-1
        d = args.get("divisor", 1)
        return w.reshape(w.shape[0] // d, d, -1).sum(axis=(1, 2))
    if kind == "Affine":  # W (inputs..., outputs...)
        out_shape = f.outputs[0].shape[args.get("base_axis", 1):]
        return w.reshape(-1, *out_shape).sum(axis=0)
    raise ValueError("no output channels known for {}".format(kind))


@dataclass(frozen=True)
class PrunedChannels:
    """Reference: the model with every output channel of its ``types`` layers zeroed where the
    weights producing it have a sum of squares <= ``threshold`` (layers whose weight the graph
    computes are left as they are). A threshold that prunes nothing is an error: the row
    would then judge an identity."""

    threshold: float
    types: Tuple[str, ...] = INNER_PRODUCT

    def mask(self, f):
        """The 0/1 mask of ``f``'s output channels, shaped to broadcast over its output, or
        None for a function this reference leaves alone."""
        if f.info.type_name not in self.types or any(parameter_source(v) is None for v in f.inputs[1:]):
            return None
        keep = (output_channel_sq_norms(f) > self.threshold).astype(np.float32)
        axis, shape = channel_axis(f), [1] * f.outputs[0].ndim
        shape[axis:axis + keep.ndim] = keep.shape
        return keep.reshape(shape)

    def __call__(self, model):
        pruned = []

        def change(f, inputs, b):
            mask = self.mask(f)
            if mask is None:
                return None
            pruned.append(int((mask == 0).sum()))
            y = b.copy(f, inputs)
            return b.call("Mul2", y + [nn.Variable.from_numpy_array(mask)], {"inplace": False})
        outputs = _derive(model, change)
        if not sum(pruned):
            raise ValueError("pruning threshold {:g} prunes no channel of {}: the row would be "
                             "vacuous".format(self.threshold, model.name))
        return evaluate(outputs, model.inputs, model.input_data)


def _symmetric_scale(values, bits):
    """``2 max|t| / (2^bits - 1)`` as float32 of shape (1,)*ndim, or None for an all-zero ``t``
    (the range a min/max recorder keeps starts at 0, so it is ``max|t|`` either way)."""
    r = float(np.abs(np.asarray(values, np.float64)).max())
    if not np.isfinite(r) or r <= 0:
        return None
    return np.full((1,) * np.ndim(values), 2.0 * r / (2 ** bits - 1)).astype(np.float32)


def _on_grid(b, step):
    """``round(b / step) * step`` in float32, rounding halves away from zero (NNabla's Round)."""
    q = np.asarray(b, np.float32) / step
    q = np.sign(q) * np.floor(np.abs(q.astype(np.float64)) + 0.5)
    return (q.astype(np.float32) * step).astype(np.float32)


@dataclass(frozen=True)
class QuantizedInputs:
    """Reference for QAT's QDQ graph: the model with the data input and the weight of every
    ``types`` layer fake-quantized (QuantizeLinear -> DequantizeLinear, zero point 0, NNabla's
    int8 functions with ``round_mode``) at the symmetric scale of the range the tensor takes on
    the model's data, and every bias on its accumulator grid ``round(b / (s_x s_w)) s_x s_w``
    (a bias whose input or weight has no scale is quantized at its own). Ranges and scales are
    measured here, from the float model's own forward."""

    types: Tuple[str, ...] = INNER_PRODUCT
    round_mode: str = "HALF_TO_EVEN"
    bits: int = 8

    def _scales(self, model, functions):
        feed(model.inputs, model.input_data)
        nn.forward_all(list(model.outputs))  # every intermediate value is kept
        return {v: _symmetric_scale(v.d, self.bits) for f in functions if f.info.type_name in self.types
                for v in f.inputs}

    def __call__(self, model):
        from converters.graph_view import GraphView
        functions = GraphView(model.outputs, model.params).functions
        scales, made = self._scales(model, functions), {}

        def fake_quantized(b, old, new):
            s = scales[old]
            if s is None:
                return new
            if old not in made:
                s, z = nn.Variable.from_numpy_array(s), nn.Variable.from_numpy_array(np.zeros_like(s))
                args = {"round_mode": self.round_mode, "narrow_range": False,
                        "dtype": dtypes.np_dtpye_to_int[np.int8]}
                q = b.call("QuantizeLinear", [new, s, z], args)
                made[old] = b.call("DequantizeLinear", q + [s, z], {})[0]
            return made[old]

        def change(f, inputs, b):
            if f.info.type_name not in self.types:
                return None
            new = [fake_quantized(b, old, v) for old, v in zip(f.inputs[:2], inputs[:2])]
            if len(f.inputs) > 2:
                sx, sw = scales[f.inputs[0]], scales[f.inputs[1]]
                if sx is None or sw is None:
                    new.append(fake_quantized(b, f.inputs[2], inputs[2]))
                else:
                    step = np.float32(np.float64(sx.reshape(-1)[0]) * np.float64(sw.reshape(-1)[0]))
                    new.append(nn.Variable.from_numpy_array(_on_grid(f.inputs[2].d, step)))
            return b.copy(f, new)
        return evaluate(_derive(model, change), model.inputs, model.input_data)
