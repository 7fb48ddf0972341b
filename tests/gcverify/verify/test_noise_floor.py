"""The float32 noise floor (verify/noise_floor.py) and the verdicts made against it.

On ill-conditioned graphs of our own (a training-mode BN normalising a 2-sample batch, a
64-layer conv/BN chain) an honest BN fold must pass with its multiple shown, and planted
exact-algebra bugs (a dropped epsilon, a bias off by a relative 1e-5... ) must fail where
their effect is above the floor.
"""
import warnings

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
import converters.bn_fold as bn_fold
from converters.bn_math import bn_scale_shift
from gcverify.core.expectations import NOISE_MULTIPLE, TOLERANCES
from gcverify.core.model import ModelSpec
from gcverify.core.running import evaluate
from gcverify.verify.model_copy import copy_model
from gcverify.verify.noise_floor import UNIT_ROUNDOFF, fan_in, measure_noise_floor
from gcverify.verify.numeric import numeric_check
from gcverify.zoo import randomize_parameters


def _spec(name, graph, shape):
    def build(seed=0):
        x = nn.Variable(shape)
        y = graph(x)
        randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
        return [x], [y]
    return ModelSpec(name, build)


def affine_then_training_bn(x):
    """The measured case of the issue: an inference BN folded into the Affine before a BN in
    training mode on a 2-sample batch, which divides by the tiny spread of two samples."""
    h = PF.affine(x, 64, name="fc1")
    h = F.relu(PF.batch_normalization(h, batch_stat=False, name="bn1"))
    h = PF.affine(h, 16, name="fc2")
    return PF.batch_normalization(h, batch_stat=True, name="bn_train")


def deep_chain(x, depth=64):
    for i in range(depth):
        x = PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c{}".format(i))
        x = F.relu(PF.batch_normalization(x, batch_stat=False, name="b{}".format(i)))
    return F.mean(x, axis=(2, 3))


MODELS = {"training_bn": (affine_then_training_bn, (2, 32)), "deep_chain": (deep_chain, (2, 8, 8, 8))}


@pytest.fixture(scope="module")
def models():
    built = {name: _spec(name, g, s).build() for name, (g, s) in MODELS.items()}
    return {name: (m, measure_noise_floor(copy_model(m), m.forward())) for name, m in built.items()}


def _fold(model):
    with warnings.catch_warnings():  # the training-mode BN is kept, as it must be
        warnings.simplefilter("ignore", GC.ConversionWarning)
        return GC.GraphConverter([GC.BatchNormalizationFoldingModifier()]).convert(model.outputs[0])


def _verdict(model, floor, outputs):
    actual = evaluate([outputs], model.inputs, model.input_data)
    return numeric_check(actual, model.forward(), TOLERANCES["float32"], floor.floors)


def test_the_floor_is_repeatable_and_positive(models):
    for model, floor in models.values():
        again = measure_noise_floor(copy_model(model), model.forward())
        assert again.floors == floor.floors
        assert all(f > 0 for f in floor.floors)


def test_fan_in_counts_the_terms_each_output_sums():
    def graph(x):
        return F.relu(PF.affine(PF.convolution(x, 4, (3, 3), name="c"), 5, name="a"))
    relu = _spec("fan", graph, (2, 3, 8, 8)).build().outputs[0].parent
    affine = relu.inputs[0].parent
    conv = affine.inputs[0].parent
    assert (fan_in(conv), fan_in(affine), fan_in(relu)) == (3 * 3 * 3, 4 * 6 * 6, 1)


def test_on_a_well_conditioned_chain_the_floor_is_linear_in_the_perturbation(models):
    """Where the network is locally linear the floor doubles with the perturbation (the same
    seeded draws, twice as large), and it is more than one rounding of the output."""
    model, floor = models["deep_chain"]
    twice = measure_noise_floor(copy_model(model), model.forward(), scale=2.0)
    assert 1.8 < twice.floors[0] / floor.floors[0] < 2.2
    assert floor.floors[0] > UNIT_ROUNDOFF * np.abs(model.forward()[0]).max()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_an_honest_fold_passes_with_its_multiple_shown(models, name):
    model, floor = models[name]
    result = _verdict(model, floor, _fold(model))
    assert result.passed, result.message()
    multiple = result.figures["noise_multiple"]
    assert 0 < multiple <= NOISE_MULTIPLE  # real rounding differences, within the multiple


def test_the_floor_covers_what_a_training_bn_amplifies(models):
    """Perturbing only the parameters misses the reassociated dot products that the
    training-mode BN amplifies; the floor perturbs every intermediate result, so the honest
    fold's error sits within it though it is far above a few ulps of the output."""
    model, floor = models["training_bn"]
    ref = model.forward()[0]
    actual = evaluate([_fold(model)], model.inputs, model.input_data)[0]
    error = np.abs(actual - ref).max() / np.abs(ref).max()
    assert error > 8 * UNIT_ROUNDOFF  # amplified well above the output's own rounding
    assert np.abs(actual - ref).max() <= NOISE_MULTIPLE * floor.floors[0]


def _planted(monkeypatch, change):
    """bn_fold computing its per-channel scale and shift through ``change``."""
    def wrong(mean, var, eps, gamma=None, beta=None):
        return change(mean, var, eps, gamma, beta)
    monkeypatch.setattr(bn_fold, "bn_scale_shift", wrong)


PLANTED = {
    "dropped epsilon": lambda mean, var, eps, gamma, beta: bn_scale_shift(mean, var, 0.0, gamma, beta),
    "epsilon 10x": lambda mean, var, eps, gamma, beta: bn_scale_shift(mean, var, 10 * eps, gamma, beta),
    "shift off by 1e-4 relative": lambda mean, var, eps, gamma, beta: tuple(
        c if i == 0 else (c * (1 + 1e-4)).astype(np.float32)
        for i, c in enumerate(bn_scale_shift(mean, var, eps, gamma, beta))),
    "scale off by 1e-5 relative": lambda mean, var, eps, gamma, beta: tuple(
        (c * (1 + 1e-5)).astype(np.float32) if i == 0 else c
        for i, c in enumerate(bn_scale_shift(mean, var, eps, gamma, beta))),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_planted_exact_algebra_bugs_fail_on_the_deep_chain(models, monkeypatch, bug):
    model, floor = models["deep_chain"]
    _planted(monkeypatch, PLANTED[bug])
    result = _verdict(model, floor, _fold(model))
    assert not result.passed, "{} passed at {:.2f}x the floor".format(bug, result.figures["noise_multiple"])
    assert result.figures["noise_multiple"] > NOISE_MULTIPLE


def test_behind_the_training_bn_a_bug_fails_when_its_effect_is_above_the_floor(models, monkeypatch):
    """The BN over two samples amplifies rounding ~1000x: the small planted bugs move the
    output less than rounding alone does there (they pass, rightly: no comparison can tell
    them from noise at that output), a larger one fails."""
    model, floor = models["training_bn"]
    small = _verdict(model, floor, _fold_with(monkeypatch, PLANTED["shift off by 1e-4 relative"], model))
    assert small.passed and small.figures["noise_multiple"] < NOISE_MULTIPLE
    large = _verdict(model, floor, _fold_with(monkeypatch, lambda mean, var, eps, gamma, beta: tuple(
        c if i == 0 else (c * 1.1).astype(np.float32)
        for i, c in enumerate(bn_scale_shift(mean, var, eps, gamma, beta))), model))
    assert not large.passed and large.figures["noise_multiple"] > NOISE_MULTIPLE


def _fold_with(monkeypatch, change, model):
    with monkeypatch.context() as m:
        m.setattr(bn_fold, "bn_scale_shift", lambda mean, var, eps, gamma=None, beta=None:
                  change(mean, var, eps, gamma, beta))
        return _fold(model)


def test_a_fixed_tolerance_misses_what_the_floor_catches(models, monkeypatch):
    """Why the floor: on the deep chain the scale 1e-5 off passes float32-fixed (rtol 1e-4)."""
    model, floor = models["deep_chain"]
    _planted(monkeypatch, PLANTED["scale off by 1e-5 relative"])
    actual = evaluate([_fold(model)], model.inputs, model.input_data)
    assert numeric_check(actual, model.forward(), TOLERANCES["float32-fixed"]).passed
    assert not numeric_check(actual, model.forward(), TOLERANCES["float32"], floor.floors).passed


def log_of_relu(x):
    """conv-BN, then Log of a ReLU: every element the ReLU zeroes is -inf in both graphs."""
    h = PF.batch_normalization(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c"), batch_stat=False, name="b")
    return F.log(F.relu(h))


def test_infinite_outputs_leave_the_floor_finite_and_the_verdict_honest(monkeypatch):
    model = _spec("log_relu", log_of_relu, (2, 3, 8, 8)).build()
    reference = model.forward()
    assert np.isneginf(reference[0]).any() and np.isfinite(reference[0]).any()
    floor = measure_noise_floor(copy_model(model), reference)
    assert np.isfinite(floor.floors[0]) and floor.floors[0] > 0
    honest = _verdict(model, floor, _fold(model))
    assert honest.passed, honest.message()
    _planted(monkeypatch, lambda mean, var, eps, gamma, beta: tuple(
        (c * (1 + 1e-3)).astype(np.float32) if i == 0 else c
        for i, c in enumerate(bn_scale_shift(mean, var, eps, gamma, beta))))
    planted = _verdict(model, floor, _fold(model))
    assert not planted.passed and planted.figures["noise_multiple"] > NOISE_MULTIPLE
