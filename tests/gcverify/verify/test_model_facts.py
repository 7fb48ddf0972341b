"""Facts of a model measured once: the reference, random functions, and whether a
comparison with it can prove anything."""
import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np

from gcverify.core.running import evaluate
from gcverify.testing import zoo_model
from gcverify.verify.model_facts import FactsCache, measure_facts, other_data
from gcverify.zoo import seeded_spec


def test_the_reference_is_the_models_own_forward_and_is_measured_once():
    model = zoo_model("lenet")
    cache = FactsCache()
    facts = cache.get(model, "cpu")
    np.testing.assert_array_equal(facts.reference[0], evaluate(model.outputs, model.inputs, model.input_data)[0])
    assert cache.get(model, "cpu") is facts and cache.get(zoo_model("lenet"), "cpu") is not facts
    assert not facts.stochastic and facts.vacuous() is None and facts.notes() == []


def test_other_data_keeps_the_values_a_model_can_take():
    ids = np.array([[0, 3, 1, 2]], np.float32)
    (moved,) = other_data([ids])
    assert sorted(moved.ravel()) == sorted(ids.ravel()) and not np.array_equal(moved, ids)
    (shifted,) = other_data([np.zeros((2, 2), np.float32)])
    assert not np.array_equal(shifted, 0)


def _graph(kind):
    def build(x):
        if kind == "ignores":
            return PF.affine(x * 0.0, 3, name="fc")
        if kind == "repeated":
            return nn.Variable.from_numpy_array(np.full((2, 3), 7.0, np.float32)) + PF.affine(x, 3, name="fc") * 0.0
        return PF.affine(x, 3, name="fc")
    return build


def test_vacuous_models_are_recognised():
    facts = {k: measure_facts(seeded_spec(k, _graph(k), [(2, 4)]).build()) for k in ("ignores", "repeated", "live")}
    assert "no output of the model changes when its input changes" in facts["ignores"].vacuous()
    assert "every output of the model is one repeated value" in facts["repeated"].vacuous()
    assert facts["live"].vacuous() is None and facts["live"].inputs_checked
