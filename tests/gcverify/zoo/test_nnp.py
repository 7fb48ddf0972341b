"""``.nnp`` models: saved by the test from zoo models, reloaded through the registry."""
import zipfile

import nnabla.functions as F
import numpy as np
import pytest
from nnabla.utils.save import save

from converters.graph_view import GraphView, all_parameters
from gcverify.core.model import Model
from gcverify.core.registry import UnknownModelError
from gcverify.core.model import scope_holding
from gcverify.zoo.nnp import NnpLoadError, split_nnp_token
from gcverify.api import default_models


@pytest.fixture(scope="module")
def registry():
    return default_models()


def _entry(model, name="net", outputs=None):
    return {"name": name, "batch_size": model.inputs[0].shape[0],
            "outputs": outputs or {"y{}".format(i): o for i, o in enumerate(model.outputs)},
            "names": {"x{}".format(i): x for i, x in enumerate(model.inputs)}}


def _save(path, *models_and_entries):
    """Save networks into one .nnp, from ``(model, entry)`` pairs or bare models ("net")."""
    pairs = [m if isinstance(m, tuple) else (m, _entry(m)) for m in models_and_entries]
    merged = Model("all", [], [], [], params={k: v for m, _ in pairs for k, v in m.params.items()})
    with scope_holding(merged.params):
        save(str(path), {"networks": [entry for _, entry in pairs]})
    return str(path)


@pytest.mark.parametrize("name", ["lenet", "unet", "mobilenet", "conv1d", "conv3d"])
def test_saved_nnp_reloads_with_the_same_output(registry, tmp_path, name):
    original = registry.build(name, seed=4)
    path = _save(tmp_path / (name + ".nnp"), original)
    before = all_parameters()
    loaded = registry.build(path, seed=4)
    assert all_parameters().keys() == before.keys()
    assert loaded.name == path
    assert [x.shape for x in loaded.inputs] == [x.shape for x in original.inputs]
    assert GraphView(loaded.outputs, loaded.params).histogram() == \
        GraphView(original.outputs, original.params).histogram()
    # parameters come over by value, into the model's private dictionary
    assert sorted(loaded.params) == sorted(original.params)
    for key, v in original.params.items():
        assert np.array_equal(loaded.params[key].d, v.d), key
        assert loaded.params[key] is not v
    loaded.input_data = original.input_data
    np.testing.assert_allclose(loaded.forward()[0], original.forward()[0], rtol=1e-6, atol=1e-6)


def test_nnp_input_data_is_seeded(registry, tmp_path):
    path = _save(tmp_path / "lenet.nnp", registry.build("lenet"))
    a, b, c = (registry.build(path, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.input_data[0], b.input_data[0])
    assert not np.array_equal(a.input_data[0], c.input_data[0])
    assert np.array_equal(a.forward()[0], b.forward()[0])


def test_network_selector_and_multiple_outputs(registry, tmp_path):
    lenet, unet = registry.build("lenet", seed=1), registry.build("unet", seed=1)
    seg = unet.outputs[0]  # read by the softmax too: only an executor can declare it an output
    second = _entry(unet, "two_heads", {"seg": seg, "probs": F.softmax(seg, axis=1)})
    path = _save(tmp_path / "both.nnp", lenet, (unet, second))
    first = registry.build(path)
    assert [o.shape for o in first.outputs] == [(4, 10)]  # no selector: the first network
    probs_only = registry.build(path + "::two_heads")
    assert [o.shape for o in probs_only.outputs] == [seg.shape]
    probs_only.input_data = unet.input_data
    np.testing.assert_allclose(probs_only.forward()[0].sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(NnpLoadError, match="no network 'three'.*net, two_heads"):
        registry.resolve(path + "::three")


def test_executor_declares_outputs(registry, tmp_path):
    unet = registry.build("unet", seed=2)
    seg = unet.outputs[0]
    probs = F.softmax(seg, axis=1)
    path = str(tmp_path / "exec.nnp")
    with scope_holding(unet.params):
        save(path, {"networks": [_entry(unet, "net", {"seg": seg, "probs": probs})],
                    "executors": [{"name": "runtime", "network": "net", "data": ["x0"],
                                   "output": ["seg", "probs"]}]})
    loaded = registry.build(path)
    assert len(loaded.outputs) == 2
    loaded.input_data = unet.input_data
    got_seg, got_probs = loaded.forward()
    np.testing.assert_allclose(got_seg, unet.forward()[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_probs.sum(axis=1), 1.0, rtol=1e-5)


def test_split_nnp_token():
    assert split_nnp_token("a/b.nnp") == ("a/b.nnp", None)
    assert split_nnp_token("a/b.nnp::net") == ("a/b.nnp", "net")


def _write_bad(tmp_path, kind):
    path = tmp_path / (kind + ".nnp")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not an nnp file\n")
    elif kind == "zip-without-network":
        with zipfile.ZipFile(str(path), "w") as z:
            z.writestr("readme.txt", "hello")
    elif kind == "bad-nntxt":
        with zipfile.ZipFile(str(path), "w") as z:
            z.writestr("network.nntxt", "garbage {{{")
    return str(path)


@pytest.mark.parametrize("kind", ["empty", "text", "zip-without-network", "bad-nntxt"])
def test_unreadable_nnp_names_the_file(registry, tmp_path, kind):
    path = _write_bad(tmp_path, kind)
    with pytest.raises(NnpLoadError) as e:  # resolving opens the file: a bad one is named at once
        registry.resolve(path)
    assert str(e.value).endswith(": " + path)  # the reason first, then the file


def test_missing_nnp_file(registry, tmp_path):
    missing = str(tmp_path / "absent.nnp")
    with pytest.raises(UnknownModelError, match="no .nnp file at"):
        registry.resolve(missing)
    with pytest.raises(UnknownModelError, match="absent.nnp"):
        registry.resolve(missing + "::net")


# --- .nnp files as users have them --------------------------------------------------------------
def _train_and_infer(x, test):
    import nnabla.parametric_functions as PF
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c")
    return F.relu(PF.batch_normalization(h, batch_stat=not test, name="bn"))


def _trained_model_file(path, executor=True):
    """A trained-model .nnp: a training and an inference network sharing their parameters,
    and (usually) an executor that runs the inference one, as NNabla's training tools write."""
    from gcverify.core.model import build_privately
    import nnabla as nn
    x = nn.Variable((2, 3, 6, 6))
    (train, infer), params = build_privately(lambda: (_train_and_infer(x, False), _train_and_infer(x, True)))
    from gcverify.zoo import randomize_parameters
    randomize_parameters([infer], params, seed=3)
    networks = [{"name": "training", "batch_size": 2, "outputs": {"y": train}, "names": {"x": x}},
                {"name": "inference", "batch_size": 2, "outputs": {"y": infer}, "names": {"x": x}}]
    contents = {"networks": networks}
    if executor:
        contents["executors"] = [{"name": "runtime", "network": "inference", "data": ["x"], "output": ["y"]}]
    with scope_holding(params):
        save(str(path), contents)
    return str(path)


def _batch_stat(model):
    return [f.info.args["batch_stat"] for f in GraphView(model.outputs, model.params).functions
            if f.info.type_name == "BatchNormalization"]


def test_the_default_network_of_a_trained_model_file_is_the_one_its_executor_runs(registry, tmp_path):
    path = _trained_model_file(tmp_path / "trained.nnp")
    model = registry.build(path)
    assert _batch_stat(model) == [False] and "its executor's network 'inference'" in registry.resolve(path).description
    assert _batch_stat(registry.build(path + "::training")) == [True]  # ::name still selects
    plain = _trained_model_file(tmp_path / "plain.nnp", executor=False)
    assert _batch_stat(registry.build(plain)) == [True]  # no executor: the file's first network


def _with_an_unused_parameter(path, tmp_path):
    """The file with a parameter declared in the inference network that no function reads
    (NNabla's ONNX importer leaves one for every Clip with constant bounds)."""
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    text = files["network.nntxt"].decode()
    at = text.index('name: "inference"')
    at = text.index("\n", at) + 1
    text = text[:at] + ('  variable {\n    name: "clip/min"\n    type: "Parameter"\n    shape {\n      dim: 1\n'
                        '    }\n  }\n') + text[at:]
    files["network.nntxt"] = text.encode()
    out = str(tmp_path / "unused.nnp")
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


def test_a_file_whose_network_declares_an_unused_parameter_loads_and_runs(registry, tmp_path):
    import nnabla as nn
    from nnabla.utils.nnp_graph import NnpLoader
    path = _with_an_unused_parameter(_trained_model_file(tmp_path / "trained.nnp"), tmp_path)
    with nn.parameter_scope("", {}):  # what made loading fail: NNabla publishes it as None
        NnpLoader(path).get_network("inference")
        with pytest.raises(AssertionError):
            nn.get_parameters(grad_only=False)
    model = registry.build(path)
    assert "clip/min" not in model.params and np.isfinite(model.forward()[0]).all()


def test_constants_of_a_file_stay_constants_and_only_declared_data_is_fed(registry, tmp_path):
    path = _trained_model_file(tmp_path / "trained.nnp")
    model = registry.build(path)
    assert [tuple(x.shape) for x in model.inputs] == [(2, 3, 6, 6)]
