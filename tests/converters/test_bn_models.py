"""BN converters on the zoo's LeNet and ResNet-50 through both seed APIs."""
from collections import Counter

import numpy as np
import pytest

import converters as GC
from gcverify.testing import zoo_model




def _snapshot(model):
    return {k: v.d.copy() for k, v in model.params.items()}


def _assert_unchanged(model, snapshot):
    assert sorted(model.params) == sorted(snapshot)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v.d, snapshot[k], err_msg=k)


def _assert_close(model, outputs, rel=1e-5):
    """Outputs equal within float32 rounding, relative to the output's magnitude."""
    for got, want in zip(model.forward(outputs), model.forward()):
        assert np.abs(got - want).max() <= rel * max(np.abs(want).max(), 1.0)


def _hist(outputs):
    return dict(GC.GraphView(outputs, {}).histogram())


SEED_003 = {
    "folded": (GC.BatchNormalizationFoldedConverter,
               {"Convolution": 2, "MaxPooling": 2, "ReLU": 3, "Affine": 2}),
    "linear": (GC.BatchNormalizationLinearConverter,
               {"Convolution": 2, "MaxPooling": 2, "ReLU": 3, "Affine": 2,
                "DepthwiseConvolution": 3, "Reshape": 2}),
}


@pytest.mark.parametrize("kind", sorted(SEED_003))
def test_lenet_seed_003_example(kind):
    model = zoo_model("lenet")
    before = _snapshot(model)
    cls, expected = SEED_003[kind]
    (x,), (y,) = model.inputs, model.outputs
    converter = cls(name="bn-{}-lenet".format(kind))
    yy = converter.convert(y, [x])
    _assert_unchanged(model, before)
    assert converter.last_result.counts == Counter({"folded" if kind == "folded" else
                                                    "linearized": 3})
    # the linear form of fc1-bn works on (N, 10): reshaped to (N, 10, 1) around the 1x1 op
    assert _hist([yy]) == expected
    _assert_close(model, [yy])


def test_seed_000_modifier_api():
    model = zoo_model("lenet")
    before = _snapshot(model)
    y = model.outputs[0]
    folded = GC.GraphConverter([GC.BatchNormalizationFoldingModifier()]).convert(y)
    assert "BatchNormalization" not in _hist([folded])
    _assert_close(model, [folded])
    modifier = GC.BatchNormalizationFoldingModifier(opposite=True, channel_last=False)
    gc = GC.GraphConverter([modifier])
    opposite = gc.convert(y)
    # conv1-bn and conv2-bn feed MaxPooling, fc1-bn feeds ReLU: nothing can absorb them
    assert gc.last_result.counts == Counter(kept=3)
    _assert_close(model, [opposite])
    self_folded = GC.GraphConverter([GC.BatchNormalizationSelfFoldingModifier()]).convert(y)
    assert "BatchNormalization" not in _hist([self_folded])
    _assert_close(model, [self_folded])
    _assert_unchanged(model, before)


def test_sequential_and_identity_converters():
    model = zoo_model("lenet")
    (x,), (y,) = model.inputs, model.outputs
    identity = GC.IdentityConverter().convert(y, [x])
    assert identity is not y and _hist([identity]) == _hist([y])
    _assert_close(model, [identity], rel=0)
    seq = GC.SequentialConverter([GC.BatchNormalizationFoldedConverter(),
                                  GC.BatchNormalizationLinearConverter()])
    yy = seq.convert(y, [x])
    assert seq.last_result.counts == Counter(folded=3)  # nothing left to linearize
    _assert_close(model, [yy])
    with pytest.raises(ValueError, match="not an input"):
        GC.BatchNormalizationFoldedConverter().convert(y, [model.params["conv1/conv/W"] * 2])


def test_resnet50_folds_to_zero_bn_within_float32():
    model = zoo_model("resnet50")
    before = _snapshot(model)
    result = GC.run_passes([GC.bn_fold.FoldBatchNorm()], model.outputs, params=model.params)
    hist = _hist(result.outputs)
    assert "BatchNormalization" not in hist and hist["Convolution"] == 53
    assert result.counts == Counter(folded=53)
    _assert_close(model, result.outputs)
    linear = GC.run_passes([GC.bn_fold.LinearizeBatchNorm()], model.outputs, params=model.params)
    assert linear.counts == Counter(linearized=53)
    assert _hist(linear.outputs)["DepthwiseConvolution"] == 53
    _assert_close(model, linear.outputs)
    _assert_unchanged(model, before)
