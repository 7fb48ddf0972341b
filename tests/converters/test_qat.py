"""NNabla's QAT flow on our engine: recording graph (identity recorders whose state belongs
to the result), calibration forwards, then the QDQ training graph built from those states."""
import warnings

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from nnabla.utils import qnn

import converters as GC
from converters import qat_math

RECORDERS = ("MinMaxMinMaxRecorder", "MaxMvaRecorder")


def small_resnet(x):
    h = F.relu(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="first"))
    h = F.relu(PF.convolution(h, 4, (3, 3), pad=(1, 1), name="block") + h)
    return PF.affine(F.average_pooling(h, (2, 2)), 5, name="fc")


def config(**kw):
    cfg = qnn.QATConfig()
    cfg.skip_inputs_layers, cfg.skip_outputs_layers = [], []
    cfg.recorder_activation = qnn.MinMaxMinMaxRecorderCallback  # exact ranges after one forward
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def ranks(outputs):
    recorder = qnn.FunctionsRankRecorder()
    for o in outputs:
        o.visit(recorder)
    return recorder.functions_ranks


def record(net, cfg, training=True):
    gc = GC.GraphConverter([GC.QuantizeNonQNNToRecordingModifier(ranks(net.outputs), cfg, training)],
                           params=net.params)
    return gc.convert(net.outputs), gc.last_result


def functions(y):
    return GC.GraphView(y, {}).functions


def recorded(y):
    """For each non-recorder function: how many of its inputs come through a recorder."""
    return [(f.info.type_name, sum(v.parent is not None and v.parent.info.type_name in RECORDERS
                                   for v in f.inputs))
            for f in functions(y) if f.info.type_name not in RECORDERS]


def test_recording_puts_one_recorder_per_tensor_before_every_input_and_changes_no_value(net_of, hist):
    net = net_of(small_resnet, (2, 3, 8, 8))
    y, result = record(net, config())
    # x, 3 conv/affine weights + biases, first/ReLU/block outputs, the sum, the ReLU, the pool
    assert hist(y) == dict(hist(net.outputs), MinMaxMinMaxRecorder=13)
    assert recorded(y) == [("Convolution", 3), ("ReLU", 1), ("Convolution", 3), ("Add2", 2),
                           ("ReLU", 1), ("AveragePooling", 1), ("Affine", 3)]
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])
    assert "Convolution-0/M-x0" in result.new_parameters and len(result.new_parameters) == 24
    assert not any(v.need_grad for v in result.new_parameters.values())
    net.assert_unchanged()


def test_add2_operands_share_one_recorder_state(net_of):
    net = net_of(small_resnet, (2, 3, 8, 8))
    y, _ = record(net, config())
    add = next(f for f in functions(y) if f.info.type_name == "Add2")
    states = [v.parent.inputs[1:] for v in add.inputs]
    states[0][1].d = 7.0  # one state in memory: what one recorder holds, the other does
    assert float(states[1][1].d.reshape(-1)[0]) == 7.0
    states[0][1].d = 0.0
    net.forward(y)
    m, big_m = (float(v.d.reshape(-1)[0]) for v in states[0])
    both = net.forward([add.inputs[0].parent.inputs[0], add.inputs[1].parent.inputs[0]])
    assert m == pytest.approx(min(0.0, *(b.min() for b in both))) and big_m == pytest.approx(max(b.max() for b in both))


@pytest.mark.parametrize("cfg, expected", [
    (config(skip_inputs_layers=["Convolution"], skip_outputs_layers=["Affine"]),
     [("Convolution", 0), ("ReLU", 1), ("Convolution", 3), ("Add2", 2), ("ReLU", 1),
      ("AveragePooling", 1), ("Affine", 0)]),
    (config(record_layers=["Convolution", "Affine"]),
     [("Convolution", 3), ("ReLU", 0), ("Convolution", 3), ("Add2", 0), ("ReLU", 0),
      ("AveragePooling", 0), ("Affine", 3)]),
], ids=["skip_first_conv_and_last_affine", "record_layers"])
def test_which_functions_are_recorded_follows_the_config(net_of, cfg, expected):
    net = net_of(small_resnet, (2, 3, 8, 8))
    y, _ = record(net, cfg)
    assert recorded(y) == expected
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])


def test_recording_both_sides_records_outputs_for_every_reader(net_of, hist):
    net = net_of(small_resnet, (2, 3, 8, 8))
    cfg = config(record_layers=["Convolution", "Affine"], recorder_position=qnn.QATConfig.RecorderPosition.BOTH)
    y, _ = record(net, cfg)
    assert recorded(y) == [("Convolution", 3), ("ReLU", 1), ("Convolution", 3), ("Add2", 1),
                           ("ReLU", 0), ("AveragePooling", 0), ("Affine", 3)]
    assert y[0].parent.info.type_name == "MinMaxMinMaxRecorder"  # after the last affine too
    np.testing.assert_array_equal(net.forward(y)[0], net.forward()[0])


@pytest.mark.parametrize("training", [True, False])
def test_only_training_recorders_update_their_state(net_of, training):
    net = net_of(small_resnet, (2, 3, 8, 8))
    y, result = record(net, config(), training)
    net.forward(y)
    top = result.new_parameters["Convolution-0/M-x0"].d
    assert (float(top) == pytest.approx(net.data[0].max())) if training else float(top) == 0


def calibrated(net, cfg, batches=3):
    y, _ = record(net, cfg)
    rng = np.random.RandomState(5)
    for _ in range(batches):
        net.inputs[0].d = rng.normal(0, 1, net.inputs[0].shape)
        nn.forward_all(y)
    return y


def test_training_graph_replaces_each_recorder_by_qdq_with_its_recorded_scale(net_of, hist):
    net = net_of(small_resnet, (2, 3, 8, 8))
    cfg = config(pow2=qnn.QATConfig.RoundingMethod.CEIL)  # ROUND may shrink a range: it clips
    y_rec = calibrated(net, cfg)
    gc = GC.GraphConverter([GC.QuantizeRecordingToTrainingModifier(None, cfg)])
    y = gc.convert(y_rec)
    h = hist(y)
    assert h["QuantizeLinear"] == h["DequantizeLinear"] == 10  # 7 activations + 3 weights
    assert h["Round"] == 3 and not any(k.endswith("Recorder") for k in h)  # 3 biases on s_x s_w grids
    assert gc.last_result.counts == {"quantized": 13}
    expected = sorted(float(qat_math.recorded_scale("minmax", [v.d for v in g.inputs[1:]], pow2="CEIL")[0])
                      for g in functions(y_rec) if g.info.type_name in RECORDERS
                      and g.outputs[0].function_references[0].inputs[2:3] != [g.outputs[0]])  # not a bias
    scales = sorted(float(q.inputs[1].d) for q in functions(y) if q.info.type_name == "QuantizeLinear")
    np.testing.assert_allclose(scales, expected, rtol=1e-6)
    conv = next(f for f in functions(y) if f.info.type_name == "Convolution")
    sx, sw = (float(v.parent.inputs[1].d.reshape(-1)[0]) for v in conv.inputs[:2])
    bias = conv.inputs[2]
    nn.forward_all([bias])
    original_bias = net.params["first/conv/b"].d
    np.testing.assert_allclose(bias.d, np.round(original_bias / (sx * sw)) * (sx * sw), rtol=1e-5, atol=1e-9)
    float_out, q_out = net.forward()[0], net.forward(y)[0]
    assert np.abs(q_out - float_out).max() < 0.05 * np.abs(float_out).max()
    net.assert_unchanged()


def test_scales_are_those_of_the_recorded_ranges(net_of):
    net = net_of(small_resnet, (2, 3, 8, 8))
    cfg = config(narrow_range=True, pow2=qnn.QATConfig.RoundingMethod.NOTROUND)
    y_rec = calibrated(net, cfg)
    first = next(f for f in functions(y_rec) if f.info.type_name in RECORDERS)
    want = qat_math.recorded_scale("minmax", [v.d for v in first.inputs[1:]], narrow_range=True)
    y = GC.GraphConverter([GC.QuantizeRecordingToTrainingModifier(None, cfg)]).convert(y_rec)
    q = next(f for f in functions(y) if f.info.type_name == "QuantizeLinear")
    np.testing.assert_allclose(q.inputs[1].d, want[0], rtol=1e-6)
    assert q.info.args["narrow_range"] is True


def test_skip_bias_and_empty_ranges_leave_floats(net_of, hist):
    net = net_of(small_resnet, (2, 3, 8, 8))
    cfg = config(skip_bias=True)
    y = GC.GraphConverter([GC.QuantizeRecordingToTrainingModifier(None, cfg)]).convert(calibrated(net, cfg))
    assert "Round" not in hist(y)
    kept = GC.GraphConverter([GC.QuantizeRecordingToTrainingModifier(None, cfg)])
    kept.convert(calibrated(net, cfg))
    assert [e.reason for e in kept.last_result.reasons("kept")] == ["bias left float (config.skip_bias)"] * 3
    never_ran, _ = record(net, cfg)
    gc = GC.GraphConverter([GC.QuantizeRecordingToTrainingModifier(None, cfg)])
    y = gc.convert(never_ran)
    assert "QuantizeLinear" not in hist(y) and hist(y) == hist(net.outputs)
    assert {e.reason for e in gc.last_result.reasons("kept")} == {"its recorder saw an empty range: left float"}


def test_a_graph_without_recorders_warns_and_bad_configs_are_refused(net_of):
    net = net_of(small_resnet, (2, 3, 8, 8))
    with pytest.warns(GC.ConversionWarning, match="found no recorder in the graph"):
        GC.GraphConverter([GC.QuantizeRecordingToTrainingModifier(None, config())]).convert(net.outputs)
    with pytest.raises(ValueError, match="precision_mode QNN is not implemented"):
        GC.QuantizeRecordingToTrainingModifier(None, config(precision_mode=qnn.PrecisionMode.QNN))
    with pytest.raises(TypeError, match="config has no record_layers, recorder_position"):
        GC.QuantizeNonQNNToRecordingModifier({}, config=object())
    with pytest.raises(TypeError, match="functions_ranks must be a {function: rank} mapping, got a list"):
        GC.QuantizeNonQNNToRecordingModifier([], config())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GC.QuantizeNonQNNToRecordingModifier(None)  # None: NNabla's default QATConfig
