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
