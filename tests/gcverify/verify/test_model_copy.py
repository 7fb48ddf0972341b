"""The per-case copy is the user's network: every leaf keeps its role and contents, random
functions get fixed seeds, and the model itself is never touched."""
import nnabla as nn
import nnabla.functions as F
import numpy as np

from converters.graph_view import GraphView
from gcverify.core.model import Model
from gcverify.core.running import evaluate
from gcverify.testing import zoo_model
from gcverify.verify.model_copy import copy_model, fixed_seed, unseeded_random_functions
from gcverify.verify.snapshot import Snapshot


def _leaves(model):
    view = GraphView(model.outputs, model.params)
    return [v for v in list(view.inputs) + list(view.parameters) if v not in set(model.inputs)]


def test_every_constant_and_parameter_keeps_values_shape_dtype_and_need_grad():
    model = zoo_model("attention")
    before = Snapshot.take(model.outputs, model.params, model.inputs)
    copy = copy_model(model)
    originals, copies = _leaves(model), _leaves(copy)
    assert len(originals) == len(copies) and len(originals) > len(model.params)  # constants too
    for a, b in zip(originals, copies):
        assert b is not a and tuple(b.shape) == tuple(a.shape) and b.need_grad == a.need_grad
        assert b.d.dtype == a.d.dtype and np.array_equal(b.d, a.d)
    np.testing.assert_array_equal(evaluate(copy.outputs, copy.inputs, copy.input_data)[0],
                                  evaluate(model.outputs, model.inputs, model.input_data)[0])
    assert not before.changes(model.outputs, model.params)


def test_integer_constants_keep_their_dtype_and_inputs_are_fresh():
    x = nn.Variable((2, 3), need_grad=True)
    index = nn.Variable.from_numpy_array(np.array([2, 0], np.int32))
    y = F.gather(x, index, axis=1, batch_dims=1)
    model = Model("m", [x], [y], [np.ones((2, 3), np.float32)])
    copy = copy_model(model)
    assert copy.inputs[0] is not x and copy.inputs[0].need_grad
    (ints,) = [v for v in _leaves(copy) if v.d.dtype == np.int32]
    assert ints is not index and np.array_equal(ints.d, [2, 0])
    np.testing.assert_array_equal(evaluate(copy.outputs, copy.inputs, copy.input_data)[0], [1, 1])


def test_random_functions_draw_with_fixed_seeds_in_every_copy():
    model = zoo_model("noisy_dqn")
    (randn,) = unseeded_random_functions(GraphView(model.outputs, model.params))
    a, b = copy_model(model), copy_model(model)
    seeds = [f.info.args["seed"] for f in GraphView(a.outputs, a.params).functions if "seed" in f.info.args]
    assert seeds == [fixed_seed(0)] and randn.info.args["seed"] == -1  # the model keeps its own
    first = [evaluate(m.outputs, m.inputs, m.input_data)[0] for m in (a, b)]
    np.testing.assert_array_equal(first[0], first[1])
    again = evaluate(a.outputs, a.inputs, a.input_data)[0]
    assert not np.array_equal(again, first[0])  # still random: the next forward draws anew
    unfixed = [copy_model(model, fix_seeds=False) for _ in range(2)]
    outs = [evaluate(m.outputs, m.inputs, m.input_data)[0] for m in unfixed]
    assert not np.array_equal(outs[0], outs[1])
