"""The verifier's own derivations (gcverify.verify.references) are right, checked here by other
means than their code: output channels by the gradients a channel sends back to the weights,
references against the networks written out by hand, QAT's fake quantization in numpy."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from converters.graph_view import GraphView
from converters.layout_emulation import cpu_runnable
from gcverify.core.model import Model, build_privately, scope_holding, seeded_inputs
from gcverify.testing import assert_untouched, snapshot
from gcverify.verify.references import (PrunedChannels, QuantizedInputs, WithoutFunctions, channel_axis,
                                        output_channel_sq_norms, training_twin)
from gcverify.zoo import randomize_parameters

LAYERS = {  # input shape, layer
    "conv": ((2, 4, 5, 5), lambda x: PF.convolution(x, 6, (3, 3), group=2, name="l")),
    "conv_channel_last": ((2, 5, 5, 4), lambda x: PF.convolution(x, 6, (3, 3), channel_last=True, name="l")),
    "deconv_grouped": ((2, 4, 3, 3), lambda x: PF.deconvolution(x, 6, (2, 2), group=2, name="l")),
    "deconv_channel_last": ((2, 3, 3, 4), lambda x: PF.deconvolution(x, 6, (2, 2), group=2, channel_last=True,
                                                                     name="l")),
    "depthwise": ((2, 3, 5, 5), lambda x: PF.depthwise_convolution(x, (3, 3), multiplier=2, name="l")),
    "depthwise_deconv": ((2, 4, 3, 3), lambda x: PF.depthwise_deconvolution(x, (3, 3), divisor=2, name="l")),
    "affine": ((2, 3, 4), lambda x: PF.affine(x, (2, 3), name="l")),
}


def _model(graph, shape, seed=0):
    def build():
        x = nn.Variable(shape)
        y = graph(x)
        randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
        return x, y
    (x, y), params = build_privately(build)
    return Model("m", [x], [y], seeded_inputs([x], seed), params)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_channel_norms_are_those_of_the_weights_each_output_channel_has_a_gradient_for(layer):
    shape, graph = LAYERS[layer]
    model = _model(graph, shape)
    y, f = model.outputs[0], model.outputs[0].parent
    y.need_grad = True
    w, axis = f.inputs[1], channel_axis(f)
    norms = output_channel_sq_norms(f)
    channel_shape = norms.shape  # one axis, or Affine's whole output shape
    assert channel_shape == tuple(y.shape[axis:axis + len(channel_shape)])
    model.feed()
    run = cpu_runnable([y], model.params)[0]  # CPU kernels are channel-first: emulated, same W
    for o in np.ndindex(*channel_shape):
        grad = np.zeros(y.shape, np.float32)
        grad[(slice(None),) * axis + o] = 1.0  # d(sum of output channel o) / dW
        w.grad.zero()
        run.forward()
        run.backward(grad)
        producing = w.g != 0  # the weights output channel o depends on
        assert producing.any() and np.isclose(norms[o], np.square(w.d[producing].astype(np.float64)).sum())


def test_a_training_twin_runs_every_bn_on_batch_statistics_and_drops_before_affines():
    def graph(x):
        h = PF.batch_normalization(PF.convolution(x, 4, (3, 3), name="c"), batch_stat=False, name="bn")
        h = F.relu(h)
        return PF.affine(h, 3, name="fc")
    model = _model(graph, (4, 3, 6, 6))
    snap = snapshot(model)
    twin = training_twin(model, dropout_before=("Affine",))
    kinds = [(f.info.type_name, f.info.args.get("batch_stat")) for f in GraphView(twin.outputs, {}).functions]
    assert kinds == [("Convolution", None), ("BatchNormalization", True), ("ReLU", None), ("Dropout", None),
                     ("Affine", None)]
    assert twin.inputs == model.inputs and twin.params == model.params
    assert_untouched(model, snap)


def test_without_functions_is_the_network_written_without_them():
    def graph(x, bn=True):
        h = PF.convolution(x, 4, (3, 3), name="c")
        h = PF.batch_normalization(h, batch_stat=False, name="bn") if bn else h
        return PF.affine(F.relu(h), 3, name="fc")
    model = _model(graph, (2, 3, 6, 6))
    with scope_holding(model.params):
        written = graph(model.inputs[0], bn=False)
    np.testing.assert_array_equal(WithoutFunctions(("BatchNormalization",))(model)[0],
                                  model.forward([written])[0])


def test_pruned_channels_are_exactly_zero_and_the_others_exactly_as_they_were():
    shape, graph = LAYERS["conv"]
    model = _model(graph, shape)
    f = model.outputs[0].parent
    norms = output_channel_sq_norms(f)
    threshold = float(np.median(norms))
    pruned = PrunedChannels(threshold)(model)[0]
    original = model.forward()[0]
    keep = norms > threshold
    assert 0 < keep.sum() < keep.size
    np.testing.assert_array_equal(pruned[:, keep], original[:, keep])
    assert not pruned[:, ~keep].any()
    with pytest.raises(ValueError, match="threshold 0 prunes no channel of m: the row would be vacuous"):
        PrunedChannels(0.0)(model)


def _fake_quantized(t):
    """numpy: round(t / s) (halves to even) clipped to int8, times s, s = 2 max|t| / 255."""
    s = np.float32(2.0 * np.abs(t.astype(np.float64)).max() / 255)
    return np.clip(np.round(t / s), -128, 127).astype(np.float32) * s, s


def test_quantized_inputs_fake_quantize_data_and_weight_and_put_the_bias_on_its_grid():
    model = _model(lambda x: PF.convolution(F.relu(x), 4, (3, 3), name="c"), (2, 3, 6, 6))
    conv = model.outputs[0].parent
    model.feed()
    nn.forward_all(model.outputs)
    (x, sx), (w, sw) = _fake_quantized(conv.inputs[0].d), _fake_quantized(conv.inputs[1].d)
    step = np.float32(np.float64(sx) * np.float64(sw))
    b = conv.inputs[2].d
    b = (np.sign(b / step) * np.floor(np.abs(b / step) + 0.5)).astype(np.float32) * step
    by_hand = F.convolution(nn.Variable.from_numpy_array(x), nn.Variable.from_numpy_array(w),
                            nn.Variable.from_numpy_array(b), **conv.info.args)
    by_hand.forward()
    np.testing.assert_allclose(QuantizedInputs()(model)[0], by_hand.d, rtol=1e-5, atol=1e-6)
    assert np.abs(QuantizedInputs()(model)[0] - model.forward()[0]).max() > 0  # quantized indeed
