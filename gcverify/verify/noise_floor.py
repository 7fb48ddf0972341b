"""How much float32 rounding alone moves a model's outputs: its noise floor.

A conversion that is exact in real arithmetic (BN folding and linearisation, layout, round
trips, low rank at full rank) still computes in another order, so float32 rounds it
differently; how much that moves the outputs depends on the network (depth, conditioning,
a BN in training mode that normalises two nearly equal samples amplifies what reaches it a
thousandfold). So the verdict compares the converted graph's error with this network's own
rounding noise, measured, instead of with a fixed tolerance.

Method: the original is forwarded ``trials`` times, each time with every function's output
perturbed in place (a ``function_post_hook``) the way recomputing it in another order would
move it:

    y_i  <-  y_i + e_i * u * |y_i|                    element-wise functions
    y_i  <-  y_i + e_i * u * sqrt(k_f) * rms(y)       functions summing k_f > 1 terms per element

with ``e_i ~ N(0, 1)``, ``u = 2^-24`` (float32's unit roundoff) and ``k_f`` the number of terms
each output element sums (the fan-in of inner products, pooling, reductions, batch
statistics): an element-wise result is rounded relative to itself, while rounding a sum of
``k`` terms errs by about ``u sqrt(k)`` times the size of the partial sums, which the
output's RMS stands for even where terms cancel. Perturbing every
intermediate output (not only the parameters) lets the amplification of later functions act
on it, as it acts on the converted graph's own rounding. Per output, the floor is the
largest ``|y_trial - y_reference|`` over the trials; a conversion passes when its error is
at most ``multiple`` times the floor plus ``abs_floor * max|y|`` (outputs near 0).

The multiple and the perturbation scale are validated on the zoo, on thousands of the
fuzzer's random graphs (no honest conversion above the multiple) and on planted bugs (a
dropped epsilon, a slightly wrong bias: caught). Limits: the floor describes the model on
its seeded data, on this device; a conversion whose rounding differs in kind (float16,
integer arithmetic) needs its own preset.
"""
from dataclasses import dataclass
from typing import List

import nnabla as nn
import numpy as np

from converters.fast_rebuild import fast_nnabla_imports

from ..core.running import feed

__all__ = ["NoiseFloor", "measure_noise_floor", "fan_in", "UNIT_ROUNDOFF"]

UNIT_ROUNDOFF = 2.0 ** -24
_REDUCTIONS = ("Sum", "Mean", "Prod", "Max", "Min")


def fan_in(f):
    """About how many terms each output element of ``f`` sums (1 for element-wise functions)."""
    kind, args = f.info.type_name, f.info.args
    x = f.inputs[0] if f.inputs else None
    if kind in ("Convolution", "DepthwiseConvolution", "DepthwiseDeconvolution"):
        return int(np.prod(f.inputs[1].shape[1:]))
    if kind == "Deconvolution":
        w = f.inputs[1].shape
        return int(w[0] * np.prod(w[2:]))
    if kind == "Affine":
        return int(np.prod(x.shape[args.get("base_axis", 1):]))
    if kind in ("AveragePooling", "SumPooling"):
        return int(np.prod(args["kernel"]))
    if kind == "BatchMatmul":
        return int(x.shape[-2] if args.get("transpose_a") else x.shape[-1])
    if kind in ("Softmax", "LogSoftmax"):
        return int(x.shape[args.get("axis", x.ndim - 1)])
    if kind == "BatchNormalization":  # statistics of the batch: a sum over each channel's elements
        channels = int(np.prod([x.shape[a] for a in args.get("axes", [1])]))
        return max(1, x.size // channels) if args.get("batch_stat") else 1
    if kind in _REDUCTIONS or kind == "GlobalAveragePooling":
        return max(1, x.size // max(f.outputs[0].size, 1))
    if kind in ("LayerNormalization", "GroupNormalization", "InstanceNormalization"):
        return max(1, x.size // x.shape[0])
    return 1


@dataclass
class NoiseFloor:
    """Per output: ``floors[i]`` the largest deviation rounding noise caused (max |d|)."""

    floors: List[float]
    trials: int
    scale: float

    def to_json(self):
        return {"floors": [float(f) for f in self.floors], "trials": self.trials, "scale": self.scale}


def _largest_deviation(y, reference):
    """max |y - reference| over the elements where both are finite (equal infinities and
    NaNs agree; a value rounding turns infinite says nothing about the size of rounding)."""
    y = np.asarray(y, np.float64)
    r = np.asarray(reference, np.float64)
    ok = np.isfinite(y) & np.isfinite(r)
    return float(np.max(np.abs(y[ok] - r[ok]))) if ok.any() else 0.0


def measure_noise_floor(model, reference, trials=4, scale=1.0, seed=0, fresh=None):
    """The noise floor of ``model`` (a faithful copy: nothing of the user's is changed) around
    its ``reference`` outputs. ``fresh()``: a new copy per trial (a stochastic model must draw
    the same numbers in every trial); default: ``model`` itself, forwarded again."""
    rng = np.random.RandomState(seed)
    deviations = [0.0] * len(reference)
    for _ in range(trials):
        copy = fresh() if fresh is not None else model
        factor = {}

        def perturb(f):
            if f not in factor:
                factor[f] = fan_in(f)
            k = factor[f]
            for o in f.outputs:
                d = o.d
                if not np.issubdtype(d.dtype, np.floating) or not d.size:
                    continue
                finite = np.isfinite(d)  # an infinity (Log of 0) is no magnitude to perturb by
                if not finite.any():
                    continue
                size = np.sqrt(k * np.mean(np.square(d[finite], dtype=np.float64))) if k > 1 else \
                    np.where(finite, np.abs(d), 0.0)
                o.d = d + (rng.standard_normal(d.shape) * (scale * UNIT_ROUNDOFF) * size).astype(d.dtype)

        with fast_nnabla_imports():  # every hook reads and writes NNabla arrays
            feed(copy.inputs, copy.input_data)
            nn.forward_all(list(copy.outputs), function_post_hook=perturb)
        for i, (o, r) in enumerate(zip(copy.outputs, reference)):
            deviations[i] = max(deviations[i], _largest_deviation(o.d, r))
    return NoiseFloor(deviations, trials, scale)

