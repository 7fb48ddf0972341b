"""Planted bugs of layout conversion (channel-last / channel-first); see :mod:`suites.planted_bugs`."""
from suites.planted_bugs import LAYOUT_ROWS, _wrap, planted


def _decided(mutate_decision):
    """Patch ``Decides.infer`` (convolutions, poolings) to mutate the Decision it returns."""
    from converters import layout_rules as R

    def mutate(orig):
        def infer(self, f, perms, d):
            dec = orig(self, f, perms, d)
            return mutate_decision(self, f, d, dec) if dec.action == "converted" else dec
        return infer
    return _wrap(R.Decides, "infer", mutate)


@planted("layout_weight_perm", "wrong weight permutation", LAYOUT_ROWS,
         "channel-last kernels reversed (0, 3, 2, 1) instead of moved (0, 2, 3, 1): kh and kw swapped")
def _weight_perm():
    from converters import layout_math as lm

    def mutate(rule, f, d, dec):
        if not (rule.weighted and d.to_last):
            return dec
        n = len(f.inputs[1].shape)
        needs = list(dec.needs)
        needs[1] = lm.OperandMap(perm=(0,) + tuple(range(n - 1, 0, -1)))
        return dec._replace(needs=needs)
    return _decided(mutate)


@planted("layout_lost_dilation", "lost argument", LAYOUT_ROWS,
         "a convolution converted to channel-last loses its dilation")
def _lost_dilation():
    def mutate(rule, f, d, dec):
        if "dilation" not in dec.args:
            return dec
        return dec._replace(args=dict(dec.args, dilation=[1] * len(dec.args["dilation"])))
    return _decided(mutate)


@planted("layout_lost_stride", "lost argument", LAYOUT_ROWS,
         "a pooling converted to channel-last takes its kernel as its stride")
def _lost_stride():
    def mutate(rule, f, d, dec):
        if rule.spatial != "kernel" or "stride" not in dec.args:
            return dec
        return dec._replace(args=dict(dec.args, stride=list(dec.args["kernel"])))
    return _decided(mutate)


@planted("layout_lost_group", "lost argument", LAYOUT_ROWS,
         "a DepthwiseDeconvolution's channel-last spelling ignores its divisor (group = channels)")
def _lost_group():
    from converters import layout_rules as R

    def mutate(orig):
        def infer(self, f, perms, d):
            dec = orig(self, f, perms, d)
            if f.info.type_name == "DepthwiseDeconvolution" and dec.action == "converted":
                return dec._replace(args=dict(dec.args, group=f.inputs[0].shape[dec.args["base_axis"]]))
            return dec
        return infer
    return _wrap(R.Depthwise, "infer", mutate)


@planted("layout_affine_rows_missed", "wrong weight permutation", LAYOUT_ROWS,
         "an Affine reading channel-last features keeps its rows in channel-first order")
def _affine_rows_missed():
    from converters import layout_math as lm
    return [(lm, "affine_rows", lambda weight_shape, in_shape, base_axis, p: lm.OperandMap())]


@planted("layout_reduce_inverse", "wrong axis", LAYOUT_ROWS,
         "Sum/Mean/Max axes mapped through the layout instead of its inverse")
def _reduce_inverse():
    from converters import layout_rules as R
    return _wrap(R.Reduce, "adjust", lambda orig: lambda self, f, args, p, inv, d: orig(self, f, args, p, p, d))


@planted("layout_output_unrestored", "lost transpose", ("channel_last", "bn_fold_channel_last", "channel_roundtrip"),
         "restore_outputs ignored: spatial outputs come back channel-last without the final transpose")
def _output_unrestored():
    from converters.layout import LayoutPass

    def mutate(orig):
        def rewrite(self, f, inputs, b, plan):
            restore, plan.restore = plan.restore, False
            try:
                return orig(self, f, inputs, b, plan)
            finally:
                plan.restore = restore
        return rewrite
    return _wrap(LayoutPass, "rewrite", mutate)

