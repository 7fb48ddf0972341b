
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.graph_view import GraphView, histogram_diff, parameter_scope
from gcverify.core.model import build_privately


def _fork(x, z):
    c = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c")
    bn = PF.batch_normalization(c, batch_stat=False, name="bn")
    return c, F.relu(bn), F.add2(c, z)  # c forks: to the BN and to another branch


def _fork_graph():
    x, z = nn.Variable((2, 3, 8, 8)), nn.Variable((2, 4, 8, 8))
    (c, y1, y2), params = build_privately(_fork, x, z)
    return x, z, c, y1, y2, params


def test_topological_order_consumers_and_leaves():
    x, z, c, y1, y2, params = _fork_graph()
    view = GraphView([y1, y2], params)
    kinds = [f.info.type_name for f in view.functions]
    assert sorted(kinds) == ["Add2", "BatchNormalization", "Convolution", "ReLU"]
    for f in view.functions:  # every producer comes before its consumers
        for v in f.inputs:
            if v.parent is not None:
                assert view.position(v.parent) < view.position(f)
    assert {f.info.type_name for f, _ in view.consumers(c)} == {"BatchNormalization", "Add2"}
    assert view.uses(c) == 2 and view.sole_consumer(c) is None
    assert view.is_output(y1) and view.uses(y1) == 1
    assert list(view.inputs) == [x, z]
    assert view.param_name(params["c/conv/W"]) == "c/conv/W"
    assert len(view.parameters) == len(params)
    assert view.describe(c.parent) == "Convolution 'c/conv'"


def test_unnamed_weights_are_parameters_by_slot():
    x = nn.Variable((2, 5))
    w = nn.Variable.from_numpy_array(np.ones((5, 3), np.float32))
    view = GraphView(F.affine(x, w), params={})
    assert list(view.inputs) == [x] and w in view.parameters and view.param_name(w) is None


def test_histogram_and_diff():
    x, z, c, y1, y2, params = _fork_graph()
    h = GraphView([y1, y2], params).histogram()
    assert h["Convolution"] == 1 and sum(h.values()) == 4
    removed, added = histogram_diff(h, {"Convolution": 1, "ReLU": 1, "Add2": 1, "Mul2": 2})
    assert removed == {"BatchNormalization": 1} and added == {"Mul2": 2}


def test_deep_chain_needs_no_recursion():
    x = nn.Variable((1, 4))
    h = x
    for _ in range(5000):
        h = F.relu(h)
    assert len(GraphView(h, {})) == 5000


def test_bad_outputs_are_named():
    with pytest.raises(TypeError, match="output 1"):
        GraphView([nn.Variable((1,)), "y"])
    with pytest.raises(ValueError):
        GraphView([])


def test_identity_converter_rebuilds_and_matches(rng):
    x, z, c, y1, y2, params = _fork_graph()
    conv = GC.IdentityConverter(params=params)
    n1, n2 = conv.convert([y1, y2], [x, z])
    assert n1 is not y1 and n1.parent is not y1.parent
    x.d, z.d = rng.randn(*x.shape), rng.randn(*z.shape)
    for p in params.values():
        p.d = rng.randn(*p.shape)
    params["bn/bn/var"].d = np.abs(params["bn/bn/var"].d) + 0.1
    nn.forward_all([y1, y2])
    want = [y1.d.copy(), y2.d.copy()]
    nn.forward_all([n1, n2])
    assert np.array_equal(n1.d, want[0]) and np.array_equal(n2.d, want[1])


def test_converter_rejects_foreign_inputs():
    x, z, c, y1, y2, params = _fork_graph()
    with pytest.raises(ValueError, match=r"inputs\[0\]"):
        GC.IdentityConverter(params=params).convert(y1, [nn.Variable((1, 1))])


@pytest.mark.parametrize("names, scope", [
    (["conv1/conv/W", "conv1/conv/b"], "conv1/conv"),
    (["bn1/bn/beta", "bn1/bn/gamma", "bn1/bn/mean", "bn1/bn/var"], "bn1/bn"),
    (["conv1/conv/W"], "conv1/conv"),
    (["forked/conv/W/channel_last"], "forked/conv"),  # a converted copy still names its layer
    (["rows/conv/W/bn_folded", "rows-bn/bn/beta/bn_folded"], "rows/conv"),
    (["weights"], "weights"),
    (["custom/kernel"], "custom"),
])
def test_parameter_scope_names_the_layer(names, scope):
    assert parameter_scope(names) == scope
