"""BN folding and channel-last together, in either order: the deployment users want on
TensorCores (NHWC, no BN). Channel-last graphs are evaluated through the CPU emulation."""
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

import converters as GC
from converters.layout_emulation import cpu_runnable
from gcverify.testing import zoo_model



def _fold_and_go_channel_last(model, fold_first):
    to_last = GC.ChannelLastModifier(model.inputs)
    fold = GC.BatchNormalizationFoldingModifier()
    gc = GC.GraphConverter([fold, to_last] if fold_first else [to_last, fold], params=model.params)
    outputs = gc.convert(list(model.outputs))
    params = dict(model.params, **gc.last_result.new_parameters)
    return outputs, params, to_last.inputs_cl


@pytest.mark.parametrize("fold_first", [True, False], ids=["fold-then-cl", "cl-then-fold"])
@pytest.mark.parametrize("name", ["lenet", "mobilenet", "unet", "conv3d"])
def test_folded_channel_last_graph_has_no_bn_and_matches(name, fold_first):
    model = zoo_model(name)
    reference = model.forward()
    outputs, params, inputs_cl = _fold_and_go_channel_last(model, fold_first)
    histogram = GC.GraphView(outputs, params).histogram()
    assert histogram["BatchNormalization"] == 0, histogram
    runnable = cpu_runnable(outputs, params)
    for x_cl, data in zip(inputs_cl, model.input_data):
        x_cl.d = np.moveaxis(data, 1, -1)
    nn.forward_all(runnable)
    for got, want in zip(runnable, reference):
        assert np.abs(got.d - want).max() <= 1e-5 * np.abs(want).max()


def test_fold_sees_through_a_reshaped_weight_but_not_a_computed_one(rng):
    x = nn.Variable.from_numpy_array(rng.randn(2, 4, 6, 6).astype(np.float32))
    w_flat = nn.Variable.from_numpy_array(rng.randn(4 * 9).astype(np.float32))
    stats = [nn.Variable.from_numpy_array(v.astype(np.float32)) for v in (
        rng.randn(1, 4, 1, 1), rng.rand(1, 4, 1, 1) + 0.5, rng.randn(1, 4, 1, 1), rng.rand(1, 4, 1, 1) + 0.5)]
    params = {"w": w_flat, "beta": stats[0], "gamma": stats[1], "mean": stats[2], "var": stats[3]}

    def graph(weight):
        h = F.depthwise_convolution(x, weight, pad=(1, 1))
        return F.batch_normalization(h, *stats, batch_stat=False)

    reshaped = graph(F.reshape(w_flat, (4, 3, 3)))
    computed = graph(F.reshape(w_flat * 2.0, (4, 3, 3)))
    reshaped.forward()
    want = reshaped.d.copy()
    conv = GC.BatchNormalizationFoldedConverter(params=params)
    folded = conv.convert(reshaped)
    assert GC.GraphView(folded, {}).histogram()["BatchNormalization"] == 0
    folded.forward()
    assert np.allclose(folded.d, want, rtol=1e-5, atol=1e-5)
    assert w_flat.d.shape == (36,)  # the original parameter is untouched
    conv.convert(computed)
    assert [e.action for e in conv.last_result.events] == ["kept"]
    assert "computed by the graph" in conv.last_result.events[0].reason
