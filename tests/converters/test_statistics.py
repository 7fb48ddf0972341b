"""Statistics taps: outputs unchanged bit for bit, records equal to numpy on the same tensors."""
import nnabla as nn
import numpy as np
import pytest

import converters as GC
from converters.graph_view import GraphView
from converters.statistics import RecordStatistics, StatisticsRecorder, TensorStatistics
from gcverify.core.conversion import Conversion
from gcverify.testing import assert_untouched, zoo_model as build, count, snapshot
from gcverify.verify.nnp_file import load_network, write_nnp

INNER = ("Convolution", "Affine")


def _recorded_tensors(model, rec):
    """Forward the original graph keeping the recorded tensors; {variable: values}."""
    variables = [v for v, _ in rec.items()]
    for v in variables:
        v.persistent = True  # keep intermediates alive through the forward
    try:
        model.feed()
        nn.forward_all(model.outputs + [v for v in variables if v.parent is not None])
        return {v: v.d.copy() for v in variables}
    finally:
        for v in variables:
            v.persistent = False


def test_lenet_records_match_the_tensors_and_outputs_are_unchanged():
    model = build("lenet")
    snap = snapshot(model)
    ref = model.forward()[0]
    conv = GC.StatisticsConverter(name="calib", bins=32, functions=["ReLU"], params=model.params)
    y = conv.convert(model.outputs[0], model.inputs)
    rec = conv.recorder
    assert count([y], "Identity") == len(rec) == 4  # x, and the 3 ReLU outputs
    np.testing.assert_array_equal(model.forward([y])[0], ref)  # exactly equal; records nothing
    assert all(r.forwards == 0 for r in rec)
    model.feed()
    rec.forward(y)
    tensors = _recorded_tensors(model, rec)
    labels = sorted(r.label for r in rec)
    assert labels[0] == "input of Convolution 'conv1/conv'"
    assert all(label.startswith("output of ReLU") for label in labels[1:])
    for v, r in rec.items():
        t = tensors[v].astype(np.float64)
        assert r.forwards == 1 and r.elements == t.size and r.shape == v.shape
        assert (r.min, r.max) == (t.min(), t.max()) == rec.range(v)
        np.testing.assert_allclose(r.mean, t.mean(), rtol=1e-9)
        others = tuple(a for a in range(t.ndim) if a != 1)
        np.testing.assert_array_equal(r.channel_min, t.min(axis=others))
        np.testing.assert_array_equal(r.channel_max, t.max(axis=others))
        np.testing.assert_allclose(r.channel_mean, t.mean(axis=others), rtol=1e-9)
        expected, _ = np.histogram(t, bins=32, range=(r.edges[0], r.edges[-1]))
        np.testing.assert_array_equal(r.counts, expected)
        assert r.counts.sum() == t.size
    assert_untouched(model, snap)


def test_records_accumulate_over_calibration_forwards():
    model = build("lenet")
    rec = StatisticsRecorder(bins=16)
    res = RecordStatistics(rec, inputs_of=INNER)(model.outputs, params=model.params)
    batches = [np.random.RandomState(s).uniform(-1, 1, model.inputs[0].shape).astype(np.float32)
               * scale for s, scale in ((1, 1.0), (2, 3.0))]
    x = model.inputs[0]
    for b in batches:
        x.d = b
        nn.forward_all(res.outputs, function_post_hook=rec.hook)
    r = rec[x]
    both = np.concatenate([b.ravel() for b in batches]).astype(np.float64)
    assert r.forwards == 2 and r.elements == both.size
    assert (r.min, r.max) == (both.min(), both.max())
    np.testing.assert_allclose(r.mean, both.mean(), rtol=1e-9)
    assert r.edges[0] <= both.min() and r.edges[-1] >= both.max()
    expected, _ = np.histogram(both, bins=16, range=(r.edges[0], r.edges[-1]))
    np.testing.assert_array_equal(r.counts, expected)
    rec.reset()
    assert rec[x].forwards == 0 and rec[x].min is None and len(rec) == 4
    with pytest.raises(ValueError, match="no calibration forward"):
        rec.range(x)


@pytest.mark.parametrize("second", [(5.0, 9.0), (-20.0, -3.0), (-40.0, 40.0)])
def test_histogram_growth_is_exact(rng, second):
    first = rng.uniform(0.0, 1.0, 500)
    more = rng.uniform(*second, 700)
    r = TensorStatistics("t", (500,), bins=8, channel_axis=None)
    r.update(first)
    r.update(more)
    both = np.concatenate([first, more])
    expected, _ = np.histogram(both, bins=8, range=(r.edges[0], r.edges[-1]))
    np.testing.assert_array_equal(r.counts, expected)
    assert r.edges[0] <= both.min() and r.edges[-1] >= both.max()
    assert r.channel_min is None


def test_resnet50_taps_leave_the_output_exactly_equal():
    model = build("resnet50")
    snap = snapshot(model)
    ref = model.forward()[0]
    modifier = GC.StatisticsModifier()
    y = GC.GraphConverter([modifier], params=model.params).convert(model.outputs[0])
    view = GraphView(model.outputs, model.params)
    data_inputs = {f.inputs[0] for f in view.functions if f.info.type_name in INNER}
    assert len(modifier.recorder) == len(data_inputs) == 50  # shared block inputs counted once
    model.feed()
    modifier.recorder.forward(y, clear_buffer=True)
    np.testing.assert_array_equal(y.d, ref)
    first = modifier.recorder
    GC.GraphConverter([modifier], params=model.params).convert(model.outputs[0])
    assert modifier.recorder is not first  # each conversion gets its own records
    assert all(r.forwards == 1 for r in first) and all(r.forwards == 0 for r in modifier.recorder)
    assert_untouched(model, snap)


def test_a_recorder_serves_one_conversion():
    model = build("lenet")
    rec = StatisticsRecorder()
    RecordStatistics(rec)(model.outputs, params=model.params)
    with pytest.raises(ValueError, match="already serves another conversion"):
        RecordStatistics(rec)(model.outputs, params=model.params)
    with pytest.raises(KeyError, match="no statistics"):
        rec[model.outputs[0]]


@pytest.mark.parametrize("make, error", [
    (lambda: StatisticsRecorder(bins=7), "even"),
    (lambda: GC.StatisticsConverter(bins=0), "even"),
    (lambda: GC.StatisticsModifier(functions=["Relu"]), "unknown function name 'Relu'"),
    (lambda: GC.StatisticsConverter(inputs_of=["Conv"]), "unknown function name 'Conv'"),
    (lambda: GC.StatisticsModifier(inputs_of=(), functions=()), "nothing to record"),
    (lambda: RecordStatistics({}), "StatisticsRecorder"),
])
def test_bad_arguments_fail_at_construction(make, error):
    with pytest.raises((ValueError, TypeError), match=error):
        make()


def test_a_calibration_graph_is_saved_and_records_the_same_statistics_where_it_is_loaded(tmp_path):
    model = build("lenet")
    conv = GC.StatisticsConverter(name="calib", bins=16, functions=["ReLU"], params=model.params)
    y = conv.convert(model.outputs[0], model.inputs)
    here = conv.recorder
    names = here.tap_names()
    assert list(names)[0] == "statistics_tap_0_input_of_Convolution_conv1_conv"
    path = str(tmp_path / "calibration.nnp")
    write_nnp(path, Conversion([y], list(model.inputs), parameters=dict(model.params)), extra_names=names)
    loaded = load_network(path)  # as a calibration run elsewhere would, with NNabla's loader
    there = StatisticsRecorder.from_taps(loaded.variables, bins=16)
    assert len(there) == len(here) == 4
    for scale in (0.5, 2.0):
        model.inputs[0].d = loaded.inputs[0].d = model.input_data[0] * scale
        here.forward(y)
        there.forward(loaded.outputs)
    elsewhere = {r.label: r for r in there}
    for name, _, r in here.taps():
        other = elsewhere[name]
        assert other.forwards == r.forwards == 2
        assert (other.min, other.max, other.mean) == (r.min, r.max, r.mean)
        np.testing.assert_array_equal(other.counts, r.counts)
        np.testing.assert_array_equal(other.channel_max, r.channel_max)
    with pytest.raises(ValueError, match="no statistics tap"):
        StatisticsRecorder.from_taps({"x": loaded.inputs[0]})


def test_a_calibration_graph_converts_again_and_plain_forwards_record_nothing():
    model = build("lenet")
    ref = model.forward()[0]
    conv = GC.StatisticsConverter(params=model.params)
    y = conv.convert(model.outputs[0], model.inputs)
    folded = GC.BatchNormalizationFoldedConverter(params=model.params).convert(y, model.inputs)
    assert count([folded], "Identity") == 4 and count([folded], "BatchNormalization") == 0
    np.testing.assert_allclose(model.forward([folded])[0], ref, rtol=1e-4, atol=1e-5)
    assert all(r.forwards == 0 for r in conv.recorder)  # the copy's taps are its own
    with pytest.raises(ValueError, match=r"recorder.forward\(outputs\)"):
        conv.recorder.range(model.inputs[0])
