"""The model registry: marked builders, ``module:builder`` specs, errors that name the culprit."""
import sys
import textwrap

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import gcverify
from converters.graph_view import all_parameters
from gcverify.api import default_models
from gcverify.core.model import Model, ModelSpec
from gcverify.core.registry import ModelRegistry, UnknownModelError
from gcverify.zoo import ZOO


def _tiny_graph():
    x = nn.Variable((2, 3))
    return x, PF.affine(x, 4, name="tiny")


@gcverify.model("tiny-marked", description="a marked builder", tolerance={"*": {"atol": 1e-3}})
def tiny_marked(seed=0):
    return _tiny_graph()


def test_add_marked_from_module_and_dict():
    this_module = sys.modules[__name__]
    registry = ModelRegistry()
    assert [s.name for s in registry.add_marked(this_module)] == ["tiny-marked"]
    assert "tiny-marked" in registry.names()

    @gcverify.register_model(default=True)
    def conftest_model():
        return _tiny_graph()

    other = default_models()
    other.add_marked({"conftest_model": conftest_model, "unmarked": _tiny_graph})
    assert other.resolve("conftest_model").builder is conftest_model
    assert "unmarked" not in other.names() and "conftest_model" in other.default_names()


def test_marked_builder_builds_with_seeded_data_and_private_params():
    registry = ModelRegistry()
    registry.add_marked({"m": tiny_marked})
    before = all_parameters()
    a, b, c = (registry.build("tiny-marked", seed=s) for s in (0, 0, 1))
    assert all_parameters().keys() == before.keys()
    assert sorted(a.params) == ["tiny/affine/W", "tiny/affine/b"]
    assert a.params["tiny/affine/W"] is not b.params["tiny/affine/W"]  # each build owns its params
    assert a.name == "tiny-marked" and a.description == "a marked builder"
    assert a.tolerance_for("anything") == {"atol": 1e-3}
    assert np.array_equal(a.input_data[0], b.input_data[0])
    assert not np.array_equal(a.input_data[0], c.input_data[0])
    assert a.forward()[0].shape == (2, 4)


def test_two_builders_under_one_name_is_an_error():
    registry = ModelRegistry([ModelSpec("x", _tiny_graph)])
    registry.add(ModelSpec("x", _tiny_graph))  # the same builder again is fine
    with pytest.raises(ValueError, match="'x'"):
        registry.add(ModelSpec("x", tiny_marked))


SAMPLE_MODULE = '''
import nnabla as nn
import nnabla.parametric_functions as PF
import gcverify


def plain(seed=0):
    x = nn.Variable((1, 2, 6, 6))
    return [x], [PF.convolution(x, 3, (3, 3), name="c")]


@gcverify.model("sample-marked")
def marked():
    x = nn.Variable((1, 4))
    return x, PF.affine(x, 2, name="a")


NOT_CALLABLE = 3
'''


@pytest.fixture
def sample_module(tmp_path, monkeypatch):
    """An importable module on sys.path, forgotten again after the test."""
    name = "gcverify_sample_models_{}".format(tmp_path.name.replace("-", "_"))
    (tmp_path / (name + ".py")).write_text(textwrap.dedent(SAMPLE_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_module_builder_spec(sample_module):
    registry = default_models()
    plain = registry.build(sample_module + ":plain", seed=2)
    assert plain.name == sample_module + ":plain"
    assert plain.outputs[0].shape == (1, 3, 4, 4) and list(plain.params) == ["c/conv/W", "c/conv/b"]
    assert np.isfinite(plain.forward()[0]).all()
    marked = registry.resolve(sample_module + ":marked")  # a marked builder keeps its own name
    assert marked.name == "sample-marked" and marked.build().outputs[0].shape == (1, 2)


def test_module_builder_spec_errors(sample_module):
    registry = ModelRegistry()
    with pytest.raises(UnknownModelError, match="no_such_module_xyz"):
        registry.resolve("no_such_module_xyz:build")
    with pytest.raises(UnknownModelError, match="no callable 'missing'"):
        registry.resolve(sample_module + ":missing")
    with pytest.raises(UnknownModelError, match="no callable 'NOT_CALLABLE'"):
        registry.resolve(sample_module + ":NOT_CALLABLE")


def test_unknown_name_lists_known_models():
    registry = default_models()
    with pytest.raises(UnknownModelError) as e:
        registry.resolve("resnet51")
    message = str(e.value)
    assert "'resnet51'" in message
    assert all(spec.name in message for spec in ZOO)


def _returns(value):
    def builder():
        return value() if callable(value) else value
    return ModelSpec("garbage", builder)


@pytest.mark.parametrize("value, culprit", [
    (None, "NoneType"),
    (42, "int"),
    (("a", "b"), "inputs \\[0\\] is a str"),
    (lambda: ([nn.Variable((1,))], [np.zeros(3)]), "outputs \\[0\\] is a ndarray"),
    (lambda: ([nn.Variable((1,))], []), "no outputs"),
    (lambda: Model("m", [], [None], []), "outputs \\[0\\] is a NoneType"),
])
def test_builder_returning_garbage_is_a_clear_error(value, culprit):
    with pytest.raises(TypeError, match="'garbage'.*" + culprit):
        _returns(value).build()


def test_builder_errors_are_not_swallowed():
    def broken(seed=0):
        raise TypeError("broken inside, nothing to do with seeds")
    with pytest.raises(TypeError, match="broken inside"):
        ModelSpec("broken", broken).build()
