"""Low-rank decomposition: full rank reproduces, lower rank errs by the discarded values."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.graph_view import GraphView
from converters.low_rank import LowRank, inner_product_cost
from gcverify.testing import zoo_model as build
from gcverify.testing import (assert_untouched, conv_affine_graph, count, functions_of,
                           private_graph, rel_error, snapshot)


def _two_layer():
    return private_graph(conv_affine_graph)


def _singular_values(matrix):
    return np.linalg.svd(matrix.astype(np.float64), compute_uv=False)


def test_affine_weight_error_is_the_discarded_singular_values():
    (x,), (y,), params = _two_layer()
    w = params["fc/affine/W"].d  # (600, 5)
    s = _singular_values(w)
    for rank in (1, 3):
        res = LowRank(rank=rank, functions=["Affine"])(y, params=params)
        first, second = functions_of(res.outputs, "Affine")
        a, b = first.inputs[1].d, second.inputs[1].d
        assert a.shape == (600, rank) and b.shape == (rank, 5) and len(first.inputs) == 2
        np.testing.assert_allclose(np.linalg.norm(w - a @ b), np.sqrt(np.sum(s[rank:] ** 2)),
                                   rtol=1e-5)
        # the output error is exactly what the discarded part of W computes
        nn.forward_all([y] + res.outputs)
        h = y.parent.inputs[0].d.reshape(2, -1)
        np.testing.assert_allclose(y.d - res.outputs[0].d, h @ (w - a @ b), atol=1e-4)


def test_convolution_error_is_the_discarded_part_of_the_kernel():
    (x,), (y,), params = _two_layer()
    w = params["conv/conv/W"].d  # (6, 3, 3, 3)
    rank = 2
    res = LowRank(rank=rank, functions="Convolution", skip_if_larger=False)(y, params=params)
    spatial, pointwise = functions_of(res.outputs, "Convolution")
    assert spatial.inputs[1].shape == (2, 3, 3, 3) and pointwise.inputs[1].shape == (6, 2, 1, 1)
    assert tuple(spatial.info.args["pad"]) == (1, 1) and tuple(pointwise.info.args["pad"]) == (0, 0)
    kernel = np.einsum("or,rckl->ockl", pointwise.inputs[1].d[:, :, 0, 0], spatial.inputs[1].d)
    s = _singular_values(w.reshape(6, -1))
    np.testing.assert_allclose(np.linalg.norm(w - kernel), np.sqrt(np.sum(s[rank:] ** 2)),
                               rtol=1e-5)
    # by linearity, the conv output moves by conv(x, W - kernel)
    diff = F.convolution(x, nn.Variable.from_numpy_array(w - kernel), pad=(1, 1))
    original = y.parent.inputs[0].parent
    nn.forward_all([original.outputs[0], pointwise.outputs[0], diff])
    np.testing.assert_allclose(original.outputs[0].d - pointwise.outputs[0].d, diff.d, atol=1e-5)
    assert spatial.inputs[0] == x


def test_full_rank_reproduces_lenet_and_reports_costs():
    model = build("lenet")
    snap = snapshot(model)
    ref = model.forward()[0]
    conv = GC.LowRankConverter(rank=10 ** 6, skip_if_larger=False, params=model.params)
    y = conv.convert(model.outputs[0], model.inputs)
    assert count([y], "Convolution") == 4 and count([y], "Affine") == 4
    np.testing.assert_allclose(model.forward([y])[0], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    report = conv.report
    # full rank r = min(I, O): a layer of I x O weights becomes r (I + O); biases stay
    matrices = [model.params[k].shape for k in ("conv1/conv/W", "conv2/conv/W", "fc1/affine/W",
                                                 "fc2/affine/W")]
    matrices = [(shape[0], int(np.prod(shape[1:]))) for shape in matrices]
    biases = 16 + 10
    assert report["params_before"] == sum(i * o for i, o in matrices) + biases
    assert report["params_after"] == sum(min(i, o) * (i + o) for i, o in matrices) + biases
    assert report["params_saved"] < 0 and report["macs_saved"] < 0  # full rank costs more
    assert [e.action for e in report["layers"]] == ["decomposed"] * 4
    assert_untouched(model, snap)


def test_energy_picks_the_smallest_rank_and_skips_layers_that_would_grow():
    model = build("lenet")
    ref = model.forward()[0]
    conv = GC.LowRankConverter(energy=0.9, params=model.params)
    y = conv.convert(model.outputs[0])
    by_layer = {e.function: e for e in conv.report["layers"]}
    for name, weight in (("Convolution 'conv2/conv'", "conv2/conv/W"),
                         ("Affine 'fc1/affine'", "fc1/affine/W")):
        w = model.params[weight].d
        s = _singular_values(w.reshape(w.shape[0], -1))
        kept = np.cumsum(s ** 2) / np.sum(s ** 2)
        r = int(np.argmax(kept >= 0.9)) + 1
        assert by_layer[name].action == "decomposed"
        assert by_layer[name].reason.startswith("rank {} of {}".format(r, s.size))
    assert by_layer["Affine 'fc2/affine'"].action == "kept"  # 10x10 at rank >= 5 saves nothing
    assert conv.report["params_saved"] > 0 and conv.report["macs_saved"] > 0
    assert conv.report["params_after"] == inner_product_cost(GraphView(y, {}))["params"]
    assert 0 < rel_error(model.forward([y])[0], ref) < 1


def test_resnet50_full_rank_reproduces():
    model = build("resnet50")
    snap = snapshot(model)
    ref = model.forward()[0]
    full = GC.GraphConverter([GC.LowRankModifier(rank=4096, skip_if_larger=False)],
                             params=model.params)
    y = full.convert(model.outputs[0])
    assert full.last_result.counts == {"decomposed": 54}
    assert rel_error(model.forward([y])[0], ref) < 1e-4
    assert_untouched(model, snap)


def test_grouped_convolutions_and_computed_weights_are_kept_with_reasons():
    def graph(rng):
        x = nn.Variable((2, 4, 6, 6))
        h = PF.convolution(x, 4, (3, 3), group=2, name="grouped")  # (2, 4, 4, 4)
        w = nn.Variable.from_numpy_array(rng.normal(size=(64, 3)).astype(np.float32))
        return [x], [F.affine(h, F.mul_scalar(w, 2.0))]  # a weight computed by the graph
    inputs, outputs, params = private_graph(graph)
    res = LowRank(rank=1)(outputs, params=params)
    reasons = sorted(e.reason for e in res.reasons("kept"))
    assert any("group=2" in r for r in reasons) and any("computed" in r for r in reasons)


@pytest.mark.parametrize("make, error", [
    (lambda: GC.LowRankConverter(rank=0), "rank"),
    (lambda: GC.LowRankConverter(rank=-3), "rank"),
    (lambda: GC.LowRankModifier(rank=1.5), "rank"),
    (lambda: GC.LowRankModifier(energy=0.0), "energy"),
    (lambda: GC.LowRankModifier(energy=1.2), "energy"),
    (lambda: GC.LowRankModifier(), "exactly one"),
    (lambda: GC.LowRankConverter(rank=2, energy=0.5), "exactly one"),
    (lambda: GC.LowRankConverter(rank=2, functions=["Deconvolution"]),
     "unknown function name 'Deconvolution'"),
])
def test_bad_arguments_fail_at_construction(make, error):
    with pytest.raises(ValueError, match=error):
        make()
