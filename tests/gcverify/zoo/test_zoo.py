"""The built-in zoo: structure of each network, seeded parameters, forward on cpu, pretrained."""
import os
import zipfile
from collections import Counter

import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest
from nnabla.utils.save import save

from converters.graph_view import GraphView, all_parameters
from gcverify.zoo import ZOO
from gcverify.zoo.seeding import _bn_roles
from gcverify.core.model import scope_holding
from gcverify.zoo.nnp import NnpLoadError
from gcverify.zoo.resnet import resnet50
from gcverify.zoo.pretrained import (RESNET50_ENV, PretrainedNotFoundError, nnabla_resnet50_path,
                                     resnet50_pretrained_path)
from gcverify.api import default_models
from gcverify.verify.model_copy import copy_model

FROM_CODE = [s.name for s in ZOO if s.name != "resnet50-pretrained"]
SMALL = [n for n in FROM_CODE if n != "resnet50"]


@pytest.fixture(scope="module")
def registry():
    return default_models()


@pytest.fixture(scope="module")
def built(registry):
    """Every code-built zoo model, seed 0, built once per module (ResNet-50 takes ~1 s)."""
    return {name: registry.build(name, seed=0) for name in FROM_CODE}


def _view(model):
    return GraphView(model.outputs, model.params)


def _functions(model, kind):
    return [f for f in _view(model).functions if f.info.type_name == kind]


def test_lenet_is_the_seed_network(built):
    lenet = built["lenet"]
    kinds = [f.info.type_name for f in _view(lenet).functions]
    assert kinds == ["Convolution", "BatchNormalization", "MaxPooling", "ReLU",
                     "Convolution", "BatchNormalization", "MaxPooling", "ReLU",
                     "Affine", "BatchNormalization", "ReLU", "Affine"]
    # conv1 and fc1 have no bias, conv2 and fc2 have one
    has_bias = [len(f.inputs) == 3 for f in _view(lenet).functions
                if f.info.type_name in ("Convolution", "Affine")]
    assert has_bias == [False, True, False, True]
    assert [f.info.args["batch_stat"] for f in _functions(lenet, "BatchNormalization")] == [False] * 3
    assert lenet.outputs[0].shape == (4, 10)


def test_resnet50_counts(built):
    hist = _view(built["resnet50"]).histogram()
    assert (hist["Convolution"], hist["BatchNormalization"], hist["Add2"]) == (53, 53, 16)
    assert built["resnet50"].inputs[0].shape == (1, 3, 224, 224)
    assert built["resnet50"].outputs[0].shape == (1, 1000)


# What each small network is there to exercise.
REQUIRED_LAYERS = {
    "unet": {"Convolution", "BatchNormalization", "MaxPooling", "AveragePooling", "SumPooling",
             "Deconvolution", "Unpooling", "Concatenate"},
    "mobilenet": {"DepthwiseConvolution", "Convolution", "BatchNormalization", "Add2"},
    "conv1d": {"Convolution", "BatchNormalization", "MaxPooling", "AveragePooling", "Affine"},
    "conv3d": {"Convolution", "BatchNormalization", "MaxPooling", "AveragePooling", "Deconvolution"},
}


@pytest.mark.parametrize("name", sorted(REQUIRED_LAYERS))
def test_small_nets_hold_their_layers(built, name):
    assert REQUIRED_LAYERS[name] <= set(_view(built[name]).histogram())


def test_unet_deconvolutions_and_skips(built):
    unet = built["unet"]
    deconvs = _functions(unet, "Deconvolution")
    assert sorted(len(f.inputs) == 3 for f in deconvs) == [False, True]  # with and without bias
    assert any(f.info.args["group"] > 1 for f in deconvs)
    concats = _functions(unet, "Concatenate")
    assert len(concats) == 3 and all(f.info.args["axis"] == 1 for f in concats)
    # every concatenation joins a decoder branch with an encoder activation read elsewhere too
    view = _view(unet)
    assert all(any(view.uses(v) > 1 for v in f.inputs) for f in concats)


def test_mobilenet_depthwise_and_grouped(built):
    mobilenet = built["mobilenet"]
    depthwise = _functions(mobilenet, "DepthwiseConvolution")
    assert {f.info.args["multiplier"] for f in depthwise} == {1, 2}
    assert sorted(f.info.args["group"] for f in _functions(mobilenet, "Convolution")) == [1, 1, 2, 4, 8]
    # BN right after every convolution
    view = _view(mobilenet)
    for f in _functions(mobilenet, "Convolution") + depthwise:
        assert view.sole_consumer(f.outputs[0]).info.type_name == "BatchNormalization"


@pytest.mark.parametrize("name, ndim", [("conv1d", 3), ("conv3d", 5)])
def test_conv_dimensionality(built, name, ndim):
    model = built[name]
    assert model.inputs[0].ndim == ndim
    for f in _functions(model, "Convolution") + _functions(model, "Deconvolution"):
        assert f.inputs[1].ndim == ndim  # (out, in, *kernel)
        assert len(f.info.args["pad"]) == ndim - 2


@pytest.mark.parametrize("name", FROM_CODE)
def test_forward_on_cpu_is_finite_and_not_degenerate(built, name):
    model = copy_model(built[name])  # random functions (noisy_dqn) draw with fixed seeds
    outs = model.forward()
    assert len(outs) == len(model.outputs) >= 1
    for out in outs:
        assert np.isfinite(out).all()
        assert out.std() > 1e-3 * (np.abs(out).mean() + 1e-12)
        if out.shape[0] > 1:  # different samples give different results
            assert not np.allclose(out[0], out[1])
    assert np.array_equal(copy_model(built[name]).forward()[0], outs[0])  # every copy computes the same


@pytest.mark.parametrize("name", [n for n in FROM_CODE if n not in ("lstm", "layout_corners")])  # no BN there
def test_bn_statistics_and_weights_are_randomized(built, name):
    view = _view(built[name])
    bns = _functions(built[name], "BatchNormalization")
    assert bns
    for f in bns:
        roles = dict(zip(_bn_roles(f.info.args), (v.d for v in f.inputs[1:])))
        if "zero-shift" in view.describe(f):  # bn_corners' BN without a shift: mean 0 on purpose
            assert not roles.pop("mean").any()
        assert all(np.ptp(d) > 0 for d in roles.values())
        assert not np.allclose(roles.get("gamma", 0), 1) and not np.allclose(roles["var"], 1) and (roles["var"] > 0).all()
    # every parameter is named in the model's own dictionary
    assert all(view.param_name(v) for v in view.parameters)
    assert len(view.parameters) == len(built[name].params)


@pytest.mark.parametrize("name", SMALL)
def test_build_is_deterministic_per_seed(registry, name):
    a, b, c = (registry.build(name, seed=s) for s in (1, 1, 2))
    for key in a.params:
        assert np.array_equal(a.params[key].d, b.params[key].d), key
    assert not all(np.array_equal(a.params[k].d, c.params[k].d) for k in a.params)
    assert np.array_equal(a.input_data[0], b.input_data[0])
    assert not np.array_equal(a.input_data[0], c.input_data[0])
    a, b, c = (copy_model(m) for m in (a, b, c))  # random functions draw with fixed seeds
    assert np.array_equal(a.forward()[0], b.forward()[0])
    assert not np.allclose(a.forward()[0], c.forward()[0])


def test_building_leaves_global_scope_unchanged(registry):
    before = all_parameters()
    models = [registry.build(name, seed=3) for name in SMALL]
    assert all_parameters().keys() == before.keys()
    for model in models:
        assert model.params and not set(model.params.values()) & set(all_parameters().values())


def test_default_matrix(registry):
    assert set(registry.default_names()) == set(FROM_CODE)
    assert "resnet50-pretrained" in registry.names()


# --- resnet50-pretrained -------------------------------------------------------------------

@pytest.fixture(scope="module")
def pretrained_like_file(built, tmp_path_factory):
    """Our ResNet-50 laid out like NNabla's Resnet-50.nnp: network "Training", input "InputX"
    through a function named "ImageAugmentationX" (here a random brightness change, so not
    bypassing it shows), classifier output "Affine", then a loss with a label input."""
    model = built["resnet50"]
    path = tmp_path_factory.mktemp("pretrained") / "Resnet-50.nnp"
    with scope_holding(model.params):  # the graph is rebuilt on the model's own parameters
        image = nn.Variable(model.inputs[0].shape)
        logits = resnet50(F.image_augmentation(image, brightness=0.5), test=True)
        label = nn.Variable((1, 1))
        loss = F.mean(F.softmax_cross_entropy(logits, label))
        save(str(path), {"networks": [{"name": "Training", "batch_size": 1, "outputs": {"Loss": loss},
                                       "names": {"InputX": image, "Affine": logits, "Label": label}}]})
    # NNabla's file names that function "ImageAugmentationX"; ``save`` names it by type.
    with zipfile.ZipFile(str(path)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    nntxt = files["network.nntxt"].decode()
    assert nntxt.count('name: "@Training/ImageAugmentation"\n') == 1
    files["network.nntxt"] = nntxt.replace('name: "@Training/ImageAugmentation"\n',
                                           'name: "ImageAugmentationX"\n').encode()
    with zipfile.ZipFile(str(path), "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return str(path)


def test_pretrained_loads_weights_from_file(registry, built, pretrained_like_file, monkeypatch):
    assert "ImageAugmentation" in _view(registry.build(pretrained_like_file)).histogram()
    monkeypatch.setenv(RESNET50_ENV, pretrained_like_file)
    loaded = registry.build("resnet50-pretrained", seed=5)
    hist = _view(loaded).histogram()
    assert (hist["Convolution"], hist["BatchNormalization"], hist["Add2"]) == (53, 53, 16)
    assert "ImageAugmentation" not in hist  # bypassed
    assert "SoftmaxCrossEntropy" not in hist  # cut at the classifier; the label is no input
    assert [x.shape for x in loaded.inputs] == [(1, 3, 224, 224)]
    assert all(f.info.args["batch_stat"] is False for f in _functions(loaded, "BatchNormalization"))
    original = built["resnet50"]
    loaded.input_data = original.input_data
    np.testing.assert_allclose(loaded.forward()[0], original.forward()[0], rtol=1e-5, atol=1e-4)


def test_pretrained_missing_file_says_where_it_looked(registry, tmp_path, monkeypatch):
    missing = str(tmp_path / "nowhere" / "Resnet-50.nnp")
    monkeypatch.setenv(RESNET50_ENV, missing)
    with pytest.raises(PretrainedNotFoundError, match=RESNET50_ENV) as e:
        registry.build("resnet50-pretrained")
    assert missing in str(e.value)


def test_pretrained_rejects_a_non_resnet_file(registry, built, tmp_path, monkeypatch):
    lenet = built["lenet"]
    path = str(tmp_path / "lenet.nnp")
    with scope_holding(lenet.params):
        save(path, {"networks": [{"name": "Training", "batch_size": 4,
                                  "outputs": {"y": lenet.outputs[0]}, "names": {"x": lenet.inputs[0]}}]})
    monkeypatch.setenv(RESNET50_ENV, path)
    with pytest.raises(NnpLoadError, match="does not look like an ImageNet ResNet-50") as e:
        registry.build("resnet50-pretrained")
    assert path in str(e.value)


def test_pretrained_default_path_is_nnabla_models_download(tmp_path, monkeypatch):
    monkeypatch.delenv(RESNET50_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), "nnabla_data", "nnp_models", "imagenet", "Resnet-50.nnp")
    assert nnabla_resnet50_path() == resnet50_pretrained_path() == expected
    assert not os.path.exists(os.path.join(str(tmp_path), "nnabla_data"))  # looking creates nothing


def test_zoo_names_are_unique():
    assert not [n for n, k in Counter(s.name for s in ZOO).items() if k > 1]
