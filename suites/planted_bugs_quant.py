"""Planted bugs of the quantizers (fixed point, QDQ, statistics), low rank and the
NNabla-compatible modifiers; see :mod:`suites.planted_bugs`."""
from suites.planted_bugs import _wrap, planted

FIXED_POINT = ("fixed_point", "fixed_point_per_channel", "fixed_point_fixed_step")
QDQ = ("qdq", "qdq_asymmetric", "qdq_int4")
LOW_RANK = ("low_rank", "low_rank_energy", "low_rank_rank")


# --- fixed point ---------------------------------------------------------------------------
@planted("fp_one_bit_coarser", "one bit coarser", FIXED_POINT,
         "weights quantized with n - 1 bits at the n-bit step (the sign bit counted twice): large weights clip")
def _one_bit_coarser():
    from converters.fixed_point import FixedPointWeights

    def mutate(orig):
        def _spec(self, f, slot):
            spec = orig(self, f, slot)
            return spec if isinstance(spec, str) or slot != 1 else (spec[0] - 1, spec[1])
        return _spec
    return _wrap(FixedPointWeights, "_spec", mutate)


@planted("fp_doubled_step", "doubled step", FIXED_POINT,
         "the automatic power-of-two step one exponent too large (2x the step nothing clips at)")
def _doubled_step():
    from converters import quant_math
    return _wrap(quant_math, "power_of_two_delta", lambda orig: lambda max_abs, n, sign=True:
                 orig(max_abs, n, sign) * 2)


@planted("fp_relu_lost_clip", "lost clip", FIXED_POINT,
         "a ReLU replaced by a *signed* FixedPointQuantize: its clip at 0 is gone")
def _relu_lost_clip():
    from converters.fixed_point import FixedPointActivations

    def mutate(orig):
        def rewrite(self, f, inputs, b, plan):
            if f.info.type_name != "ReLU" or "ReLU" not in self.functions or self._sign("ReLU"):
                return orig(self, f, inputs, b, plan)
            b.note(f, "replaced", "n={} delta={:g}".format(self.n, self.delta))
            return b.call("FixedPointQuantize", [inputs[0]], dict(
                sign=True, n=self.n, delta=self.delta, ste_fine_grained=self.ste_fine_grained))
        return rewrite
    return _wrap(FixedPointActivations, "rewrite", mutate)


@planted("fp_misses_relu6", "missed layer", FIXED_POINT,
         "ReLU6 outputs left unquantized (an activation list from before ReLU6 was added)")
def _misses_relu6():
    from converters.fixed_point import FixedPointActivations

    def mutate(orig):
        def rewrite(self, f, inputs, b, plan):
            return None if f.info.type_name == "ReLU6" else orig(self, f, inputs, b, plan)
        return rewrite
    return _wrap(FixedPointActivations, "rewrite", mutate)


@planted("fp_misses_affine", "missed layer", FIXED_POINT,
         "Affine weights left float (a weight quantizer written for convolutions only)")
def _fp_misses_affine():
    from converters.fixed_point import FixedPointWeights

    def mutate(orig):
        def plan(self, view):
            self.functions = tuple(t for t in self.functions if t != "Affine")
            return orig(self, view)
        return plan
    return _wrap(FixedPointWeights, "plan", mutate)


@planted("fp_per_channel_axes", "wrong axis", FIXED_POINT,
         "per-channel steps taken over the reduced axes instead of the output-channel axes")
def _per_channel_axes():
    from converters import quant_math
    from converters.fixed_point import WEIGHT_OUTPUT_AXES, FixedPointWeights

    def mutate(orig):
        def _spec(self, f, slot):
            v = f.inputs[slot]
            if slot != 1 or not self.per_channel or self.delta is not None or v.parent is not None:
                return orig(self, f, slot)
            keep = WEIGHT_OUTPUT_AXES[f.info.type_name](v.ndim, f.info.args.get("channel_last"))
            wrong = tuple(a for a in range(v.ndim) if a not in keep)
            return self.n, quant_math.power_of_two_delta(quant_math.abs_max(v.d, wrong), self.n, self.sign)
        return _spec
    return _wrap(FixedPointWeights, "_spec", mutate)


# --- QDQ and statistics ----------------------------------------------------------------------
@planted("qdq_channel_axis", "wrong axis", QDQ,
         "Convolution weights scaled per input channel (axis 1) instead of per output channel")
def _channel_axis():
    from converters.fixed_point import WEIGHT_OUTPUT_AXES
    return [(WEIGHT_OUTPUT_AXES, "Convolution", lambda ndim, cl: (1,))]


def _simulated(rounding="Round", clip=True):
    """qdq.simulated_quantize_dequantize with a planted bug, patched where both users (QDQ of
    other widths, QAT's bias on its accumulator grid) look it up."""
    from converters import qat, qdq

    def simulated(b, v, s, z=None, bounds=None):
        no_inplace = {"inplace": False}
        q = b.call(rounding, b.call("Div2", [v, s], no_inplace), {})
        if z is not None:
            q = b.call("Add2", q + [z], no_inplace)
        if bounds is not None and clip:
            q = b.call("MinimumScalar", b.call("MaximumScalar", q, {"val": float(bounds[0])}),
                       {"val": float(bounds[1])})
        if z is not None:
            q = b.call("Sub2", q + [z], no_inplace)
        return b.call("Mul2", q + [s], no_inplace)[0]
    return [(qdq, "simulated_quantize_dequantize", simulated), (qat, "simulated_quantize_dequantize", simulated)]


@planted("qdq_floor", "floor instead of round", QDQ + ("qat_qdq",),
         "the simulated quantizer floors instead of rounding to nearest")
def _floor():
    return _simulated(rounding="Floor")


@planted("qdq_lost_clip", "lost clip", QDQ + ("qat_qdq",),
         "the simulated quantizer forgets to clip to [qmin, qmax]")
def _lost_clip():
    return _simulated(clip=False)


@planted("qdq_zero_point_sign", "wrong zero point", QDQ,
         "asymmetric zero point round(qmin + lo / scale) instead of round(qmin - lo / scale)")
def _zero_point_sign():
    import numpy as np
    from converters import quant_math

    def mutate(orig):
        def linear_scale(lo, hi, n=8, symmetric=True):
            scale, zero = orig(lo, hi, n, symmetric)
            if symmetric:
                return scale, zero
            qmin, qmax = quant_math.int_range(n, False)
            low = np.minimum(np.asarray(lo, np.float64), 0.0)
            return scale, np.clip(np.round(qmin + low / scale), qmin, qmax).astype(np.float32)
        return linear_scale
    return _wrap(quant_math, "linear_scale", mutate)


@planted("qdq_misses_deconv", "missed layer", QDQ,
         "Deconvolution left float, silently (a quantizer written for Convolution and Affine)")
def _qdq_misses_deconv():
    from converters.qdq import QuantizeDequantize

    def mutate(orig):
        def rewrite(self, f, inputs, b, plan):
            return None if f.info.type_name == "Deconvolution" else orig(self, f, inputs, b, plan)
        return rewrite
    return _wrap(QuantizeDequantize, "rewrite", mutate)


@planted("qdq_misses_affine", "missed layer", QDQ,
         "Affine left float, silently (a quantizer written for convolutions only)")
def _qdq_misses_affine():
    from converters.qdq import QuantizeDequantize

    def mutate(orig):
        def rewrite(self, f, inputs, b, plan):
            return None if f.info.type_name == "Affine" else orig(self, f, inputs, b, plan)
        return rewrite
    return _wrap(QuantizeDequantize, "rewrite", mutate)


@planted("stats_misses_deconv", "missed layer", ("statistics", "qdq"),
         "no statistics tap on the input of a Deconvolution: QDQ finds no range for it")
def _stats_misses_deconv():
    from converters.statistics import RecordStatistics

    def mutate(orig):
        def plan(self, view):
            found = orig(self, view)
            for f in view.functions:
                if f.info.type_name == "Deconvolution":
                    found["targets"].pop(f.inputs[0], None)
            return found
        return plan
    return _wrap(RecordStatistics, "plan", mutate)


# --- low rank ----------------------------------------------------------------------------------
@planted("low_rank_off_by_one", "rank off", LOW_RANK,
         "the energy rank without its + 1: one singular value too few, even at energy=1.0")
def _off_by_one():
    import numpy as np
    from converters import quant_math

    def mutate(orig):
        def choose_rank(singular_values, rank=None, energy=None):
            if energy is None or rank is not None:
                return orig(singular_values, rank, energy)
            s = np.asarray(singular_values, np.float64)
            kept = np.cumsum(s ** 2) / max(float(np.sum(s ** 2)), 1e-300)
            return int(min(max(np.searchsorted(kept, energy - 1e-12), 1), s.size))
        return choose_rank
    return _wrap(quant_math, "choose_rank", mutate)


@planted("low_rank_lost_bias", "lost term", LOW_RANK,
         "the decomposed pair forgets the layer's bias")
def _lost_bias():
    from converters.low_rank import LowRank
    return _wrap(LowRank, "rewrite", lambda orig: lambda self, f, inputs, b, plan:
                 orig(self, f, list(inputs)[:2], b, plan))


@planted("low_rank_energy_unsquared", "rank off", LOW_RANK,
         "energy measured on s_i instead of s_i^2: below full energy the rank is wrong")
def _energy_unsquared():
    import numpy as np
    from converters import quant_math
    return _wrap(quant_math, "choose_rank", lambda orig: lambda s, rank=None, energy=None:
                 orig(np.sqrt(np.asarray(s, np.float64)), rank, energy))


# --- the NNabla-compatible modifiers -------------------------------------------------------
@planted("fused_bn_z_operand", "wrong operand", ("fused_bn",),
         "z taken from the BN's own side of the Add2 (the operand index inverted)")
def _z_operand():
    from converters import fused_bn

    def _other_operand(add, y):
        a, b = add.inputs
        if a == y and b == y:
            return None
        return 0 if a == y else 1
    return [(fused_bn, "_other_operand", _other_operand)]


@planted("unfused_bn_drops_add", "lost term", ("unfused_bn",),
         "unfusing forgets the FusedBatchNormalization's z: ReLU(BN(x)) instead of ReLU(BN(x) + z)")
def _drops_add():
    from converters.fused_bn import UnfuseBatchNorm
    return _wrap(UnfuseBatchNorm, "rewrite", lambda orig: lambda self, f, inputs, b, plan:
                 orig(self, f, list(inputs)[:5], b, plan))


@planted("prune_keeps_bias", "lost term", ("prune",),
         "pruning zeroes a channel's weights but not its bias")
def _keeps_bias():
    from converters import prune_math
    return _wrap(prune_math, "pruned", lambda orig: lambda kind, w, b, mask, args=None:
                 (orig(kind, w, b, mask, args)[0], b))


@planted("no_grad_misses_shared", "broken shared-weight handling", ("no_grad",),
         "a parameter read twice is stopped for its first reader only")
def _misses_shared():
    from converters.graph_edits import StopParameterGradients

    def rewrite(self, f, inputs, b, plan):
        new_inputs, stopped = list(inputs), 0
        for i, v in enumerate(f.inputs):
            if v.parent is None and b.view.is_parameter(v) and v.need_grad and v not in plan:
                plan[v] = b.adopt(v.get_unlinked_variable(need_grad=False), v, "no_grad")
                new_inputs[i], stopped = plan[v], stopped + 1
        if not stopped:
            return None
        b.note(f, "no_grad", "{} parameter(s) read without gradient".format(stopped))
        return b.copy(f, new_inputs)
    return [(StopParameterGradients, "rewrite", rewrite)]


@planted("qat_bias_scale", "wrong step", ("qat_qdq",),
         "QAT's bias grid s_x instead of s_x * s_w (the weight scale forgotten)")
def _bias_scale():
    import numpy as np
    from converters import qat_math
    return [(qat_math, "bias_scale", lambda scale_x, scale_w:
             np.asarray(scale_x, np.float64).reshape(-1).astype(np.float32))]


@planted("identity_lost_constant", "lost constant", ("identity_modifier",),
         "every leaf that is not a parameter taken for an input: constants replaced by empty variables")
def _lost_constant():
    import nnabla as nn
    from converters.graph_edits import ReplaceInputs

    def mutate(orig):
        def input_map(self, view, b, plan):
            mapping = orig(self, view, b, plan)
            for v in view.inputs:
                if v not in mapping and not view.is_parameter(v):
                    mapping[v] = nn.Variable(v.shape)
            return mapping
        return input_map
    return _wrap(ReplaceInputs, "input_map", mutate)
