"""The option rows of issue #12 (item 4) pass on the zoo and fail on a planted bug of their class.

Each planted bug is a monkeypatch of the converter code the row reaches (never of the
verifier): one bit coarser, a wrong zero point, a lost dilation, a rank below the declared
energy, a split worse than the truncated SVD, a folded padding, ReLU6 taken as signed...
The row must fail with a message naming the problem.
"""
import numpy as np
import pytest

import converters.bn_fold as bn_fold
import converters.fixed_point as fixed_point
import converters.layout_rules as layout_rules
import converters.quant_math as quant_math
import converters.statistics as statistics
from gcverify.zoo import zoo_spec


def _failures(matrix_verdict, converter, model):
    verdict = matrix_verdict(converter, zoo_spec(model))
    assert verdict.skip is None
    return verdict.failures


@pytest.mark.parametrize("converter, model", [
    ("fixed_point_per_channel", "layout_corners"), ("fixed_point_fixed_step", "noisy_dqn"),
    ("qdq_asymmetric", "bn_corners"), ("qdq_int4", "lenet"), ("low_rank_energy", "bn_corners"),
    ("low_rank_rank", "lenet"), ("channel_last_bn_fold", "bn_corners"), ("statistics_outputs", "lstm"),
    ("bn_fold_opposite", "bn_corners"), ("channel_last", "layout_corners")])
def test_new_rows_pass(matrix_verdict, converter, model):
    assert _failures(matrix_verdict, converter, model) == []


def test_asymmetric_qdq_of_other_widths_passes_too(matrix_verdict):
    """The one combination no default row takes: a zero point in the simulated (n != 8) form."""
    from gcverify.builtin.ours import spec_of
    from gcverify.core.expectations import Adds, Functions
    from gcverify.core.quantization import LinearQuantSpec
    row = spec_of("qdq").variant("qdq_int6_asymmetric", dict(n=6, symmetric=False),
                                 layers=(Adds((Functions("Sub2"),)),),
                                 quantization=LinearQuantSpec(bits=6, symmetric=False, per_channel=True))
    assert matrix_verdict("qdq_int6_asymmetric", zoo_spec("bn_corners"), extra=(row,)).failures == []


def test_bn_fold_opposite_is_no_longer_vacuous(matrix_verdict):
    verdict = matrix_verdict("bn_fold_opposite", zoo_spec("bn_corners"))
    assert not verdict.failures and verdict.row.removed.get("BatchNormalization", 0) == 5


def _coarser_step(monkeypatch):
    real = quant_math.power_of_two_delta
    monkeypatch.setattr(quant_math, "power_of_two_delta", lambda m, n, sign=True: real(m, n, sign) * 2)


def test_fixed_point_per_channel_catches_a_coarser_step(matrix_verdict, monkeypatch):
    _coarser_step(monkeypatch)
    failures = _failures(matrix_verdict, "fixed_point_per_channel", "lenet")
    assert failures and "off the declared grid" in failures[0]


def test_fixed_point_per_channel_catches_relu6_taken_as_signed(matrix_verdict, monkeypatch):
    monkeypatch.setitem(fixed_point.ACTIVATION_SIGN, "ReLU6", True)  # clips at 3.5 instead of 7.5
    failures = _failures(matrix_verdict, "fixed_point_per_channel", "layout_corners")
    assert failures and "declared quantization" in failures[0]


def test_fixed_point_per_channel_catches_relu6_replaced_like_relu(matrix_verdict, monkeypatch):
    real = fixed_point.FixedPointActivations.rewrite

    def no_top(self, f, inputs, b, plan):  # ReLU6 -> unsigned FPQ of its input: no clip at 6
        if f.info.type_name == "ReLU6":
            return b.call("FixedPointQuantize", [inputs[0]], dict(sign=False, n=self.n, delta=self.delta,
                                                                 ste_fine_grained=True))
        return real(self, f, inputs, b, plan)
    monkeypatch.setattr(fixed_point.FixedPointActivations, "rewrite", no_top)
    failures = _failures(matrix_verdict, "fixed_point_per_channel", "layout_corners")
    assert failures and "quantization" in failures[0]


def test_fixed_point_fixed_step_catches_an_ignored_step(matrix_verdict, monkeypatch):
    real = fixed_point.FixedPointWeights.__init__

    def automatic(self, *args, **kw):
        real(self, *args, **kw)
        self.delta = None  # the given step dropped: an automatic one instead
    monkeypatch.setattr(fixed_point.FixedPointWeights, "__init__", automatic)
    failures = _failures(matrix_verdict, "fixed_point_fixed_step", "lenet")
    assert failures and "off the declared grid" in failures[0]


def test_qdq_asymmetric_catches_a_wrong_zero_point(matrix_verdict, monkeypatch):
    real = quant_math.linear_scale

    def shifted(lo, hi, n=8, symmetric=True):
        scale, zero = real(lo, hi, n, symmetric)
        return scale, zero if symmetric else zero + 1
    monkeypatch.setattr(quant_math, "linear_scale", shifted)
    failures = _failures(matrix_verdict, "qdq_asymmetric", "lenet")
    assert failures and "off the declared grid" in failures[0]


def test_qdq_int4_catches_one_bit_coarser(matrix_verdict, monkeypatch):
    real = quant_math.linear_scale
    monkeypatch.setattr(quant_math, "linear_scale", lambda lo, hi, n=8, symmetric=True: real(lo, hi, n - 1, symmetric))
    failures = _failures(matrix_verdict, "qdq_int4", "lenet")
    assert failures and "off the declared grid" in failures[0]


def test_low_rank_energy_catches_a_rank_below_the_declared_energy(matrix_verdict, monkeypatch):
    real = quant_math.truncated_svd

    def one_less(matrix, rank=None, energy=None):
        a, b, s = real(matrix, rank, energy)
        r = max(a.shape[1] - 1, 1)
        return a[:, :r], b[:r], s
    monkeypatch.setattr(quant_math, "truncated_svd", one_less)
    failures = _failures(matrix_verdict, "low_rank_energy", "lenet")
    assert failures and "the spec asks for rank" in failures[0]


def test_low_rank_energy_catches_a_split_worse_than_the_bound(matrix_verdict, monkeypatch):
    real = quant_math.truncated_svd

    def sloppy(matrix, rank=None, energy=None):
        a, b, s = real(matrix, rank, energy)
        return a * np.float32(1.02), b, s  # same rank, 2% off: no longer the best rank-r matrix
    monkeypatch.setattr(quant_math, "truncated_svd", sloppy)
    failures = _failures(matrix_verdict, "low_rank_rank", "lenet")
    assert failures and "exceeds the discarded-energy bound" in failures[0]


@pytest.mark.parametrize("rule", [layout_rules.Decides, layout_rules.Depthwise])
def test_channel_last_catches_a_lost_dilation(matrix_verdict, monkeypatch, rule):
    real = rule.infer

    def undilated(self, f, perms, d):
        dec = real(self, f, perms, d)
        if dec.args.get("dilation") and type(self) is rule:
            dec = dec._replace(args=dict(dec.args, dilation=[1] * len(dec.args["dilation"])))
        return dec
    monkeypatch.setattr(rule, "infer", undilated)
    failures = _failures(matrix_verdict, "channel_last", "layout_corners")
    assert failures and "outputs differ" in failures[0]


def test_channel_last_bn_fold_catches_a_fold_that_ignores_channel_last(matrix_verdict, monkeypatch):
    monkeypatch.setattr(bn_fold, "_channel_axes", lambda f, ndim: None if f.info.type_name == "Affine"
                        else [f.info.args.get("base_axis", 1)])
    failures = _failures(matrix_verdict, "channel_last_bn_fold", "lenet")
    assert failures and "BatchNormalization" in failures[0] and "should be gone" in failures[0]


def test_bn_fold_opposite_catches_a_fold_across_zero_padding(matrix_verdict, monkeypatch):
    real = bn_fold.FoldBatchNorm._following

    def padded_too(view, f, bn):
        layer, reason = real(view, f, bn)
        return (layer, None) if reason and "zero-pads" in reason else (layer, reason)
    monkeypatch.setattr(bn_fold.FoldBatchNorm, "_following", staticmethod(padded_too))
    failures = _failures(matrix_verdict, "bn_fold_opposite", "bn_corners")
    assert failures and "outputs differ" in failures[0]


def test_bn_fold_catches_a_fold_of_a_forked_output(matrix_verdict, monkeypatch):
    real = bn_fold.FoldBatchNorm._preceding

    def forked_too(view, f, bn):
        layer, reason = real(view, f, bn)
        return (view.producer(bn.x), None) if reason and "also read by" in reason else (layer, reason)
    monkeypatch.setattr(bn_fold.FoldBatchNorm, "_preceding", staticmethod(forked_too))
    failures = _failures(matrix_verdict, "bn_fold", "bn_corners")
    assert failures and "outputs differ" in failures[0]


def test_bn_fold_catches_folding_a_training_bn(matrix_verdict, monkeypatch):
    real = bn_fold._bn_reason
    monkeypatch.setattr(bn_fold, "_bn_reason", lambda view, bn: None if bn.batch_stat else real(view, bn))
    failures = _failures(matrix_verdict, "bn_fold", "bn_training")
    assert failures and "outputs differ" in failures[0]


def test_statistics_outputs_catches_a_tap_that_is_no_identity(matrix_verdict, monkeypatch):
    real = statistics.RecordStatistics._tap

    def scaled(self, old, new, b, plan):
        out = real(self, old, new, b, plan)
        return b.call("MulScalar", [out], {"val": 1.001, "inplace": False})[0] if old.parent is not None else out
    monkeypatch.setattr(statistics.RecordStatistics, "_tap", scaled)
    failures = _failures(matrix_verdict, "statistics_outputs", "lstm")
    assert failures and "outputs differ" in failures[0]
