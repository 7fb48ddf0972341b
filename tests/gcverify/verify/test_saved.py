"""The saved check: converted graphs written with NNabla's .nnp saver, reloaded with its
loader, identical outputs; what cannot be saved says why; the matrix row carries it."""
import os
import tempfile

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from converters.graph_view import GraphView
from gcverify.api import default_converters
from gcverify.core.conversion import Conversion
from gcverify.core.expectations import TOLERANCES
from gcverify.core.model import Model, build_privately, seeded_inputs
from gcverify.testing import python_identity, zoo_model
from gcverify.verify import nnp_file
from gcverify.verify.case import CaseSettings, convert_model, run_case
from gcverify.verify.devices import Device
from gcverify.verify.nnp_file import layout_tag, load_network, plan_layout, write_nnp
from gcverify.verify.saved import SavedOptions, saved_check

ALL = SavedOptions(mode="all")


def _converted(converter, model_name="lenet"):
    model = zoo_model(model_name)
    conversion, _ = convert_model(default_converters().get(converter), model)
    return model, conversion


@pytest.mark.parametrize("converter", ["bn_fold", "channel_last", "fixed_point", "qdq", "low_rank"])
def test_converted_lenet_reloads_to_identical_outputs(converter):
    model, conversion = _converted(converter)
    emulate = default_converters().get(converter).cpu_emulation
    result = saved_check(conversion, model, model.input_data, emulate=emulate, options=ALL)
    assert result.passed, result.message()
    assert result.figures["saved"] == "identical"
    assert result.figures["saved_bytes"] > 10000 and result.figures["saved_time"] > 0
    assert "network 'converted', executor 'runtime'" in result.details[0]


def test_channel_last_file_names_its_nhwc_input_and_keeps_channel_last_functions(tmp_path):
    model, conversion = _converted("channel_last")
    path = str(tmp_path / "cl.nnp")
    layout = write_nnp(path, conversion)
    assert layout.input_names == ["x_nhwc"] and layout.output_names == ["y"]
    with nn.auto_forward(False):
        loaded = load_network(path)
    assert loaded.data_names == ["x_nhwc"] and loaded.inputs[0].shape == (4, 28, 28, 3)
    convs = [f for f in GraphView(loaded.outputs, {}).functions if f.info.type_name == "Convolution"]
    assert convs and all(f.info.args["channel_last"] for f in convs)  # what a cudnn user runs


def test_layout_tags_name_the_moved_axes():
    assert [layout_tag(p) for p in [None, (0, 1), (0, 2, 1), (0, 2, 3, 1), (0, 2, 3, 4, 1), (0, 3, 1, 2)]] \
        == [None, None, "nlc", "nhwc", "ndhwc", "t0312"]


def test_a_file_that_computes_something_else_fails_naming_the_output(monkeypatch):
    model, conversion = _converted("bn_fold")
    _, other = _converted("identity")
    w = next(v for k, v in other.parameters.items() if k.endswith("fc2/affine/W"))
    w.d = w.d * 1.01
    real_write = nnp_file.write_nnp

    def write_the_other_graph(path, conversion, layout=None, extra_names=None):
        return real_write(path, other, plan_layout(other))
    monkeypatch.setattr("gcverify.verify.saved.write_nnp", write_the_other_graph)
    result = saved_check(conversion, model, model.input_data, options=ALL)
    assert not result.passed and result.figures["saved"] == "differs"
    assert "the reloaded .nnp differs" in result.summary and "output y:" in result.summary
    assert any("in the file only: BatchNormalization" in d for d in result.details)


def test_expected_outputs_are_compared_bit_for_bit():
    model, conversion = _converted("bn_fold")
    expected = model.forward()  # the original's numbers: equal within float32, not bit for bit
    result = saved_check(conversion, model, model.input_data, expected=expected, options=ALL)
    assert not result.passed
    assert "elements differ, max |difference|" in result.summary


def test_a_python_function_cannot_be_saved_and_says_which():
    model = zoo_model("lenet")
    y = F.relu(python_identity(model.outputs[0]))
    conversion = Conversion([y], list(model.inputs), parameters=dict(model.params))
    noted = saved_check(conversion, model, model.input_data, options=ALL)
    assert noted.passed and noted.figures["saved"].startswith("unsaveable: PythonIdentity #")
    refused = saved_check(conversion, model, model.input_data,
                          options=SavedOptions(mode="all", unsaveable_fails=True))
    assert not refused.passed and "NNabla's .nnp format cannot hold" in refused.summary


def test_auto_skips_graphs_above_the_budget_and_off_checks_nothing():
    model, conversion = _converted("bn_fold")
    skipped = saved_check(conversion, model, model.input_data, options=SavedOptions(max_bytes=1000))
    assert skipped.passed and skipped.figures["saved"].startswith("skipped: 0 MB > 0 MB (--gc-saved=all")
    assert saved_check(conversion, model, model.input_data, options=SavedOptions(mode="off")).figures == {
        "saved": "off"}
    with pytest.raises(ValueError, match="one of auto, all, off"):
        SavedOptions(mode="some")


def _shared_weight_graph(x):
    """One weight read by a plain conv and by a conv followed by BN: folding makes
    ``c/conv/W/bn_folded`` beside ``c/conv/W``, which NNabla's nested scopes cannot hold."""
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c")
    w = h.parent.inputs[1]
    folded = PF.batch_normalization(F.convolution(x, w, None, pad=(1, 1)), batch_stat=False, name="bn")
    return [h + folded]


def test_clashing_parameter_names_are_renamed_and_still_identical():
    x = nn.Variable((2, 3, 6, 6))
    outputs, params = build_privately(_shared_weight_graph, x)
    for v in params.values():
        v.d = np.random.RandomState(1).uniform(0.5, 1.5, v.shape)
    model = Model("shared", [x], outputs, seeded_inputs([x]), params)
    conversion, _ = convert_model(default_converters().get("bn_fold"), model)
    layout = plan_layout(conversion)
    assert layout.renamed == {"c/conv/W/bn_folded": "c/conv/W_bn_folded",
                              "c/conv/W/bn_folded_bias": "c/conv/W_bn_folded_bias"}
    result = saved_check(conversion, model, model.input_data, options=ALL)
    assert result.passed, result.message()
    assert any(d.startswith("renamed for NNabla's nested scopes: c/conv/W/bn_folded -> c/conv/W_bn_folded")
               for d in result.details)


def test_constants_are_saved_with_their_values_and_unread_inputs_are_left_out():
    x, unused = nn.Variable((2, 3)), nn.Variable((2, 5))
    table = nn.Variable.from_numpy_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    model = Model("constants", [x, unused], [F.tanh(x * table)], seeded_inputs([x, unused]))
    conversion = Conversion(list(model.outputs), list(model.inputs), parameters={})
    layout = plan_layout(conversion)
    assert list(layout.parameters) == ["constant_0"] and layout.input_names == ["x0", "x1"]
    result = saved_check(conversion, model, model.input_data, options=ALL)
    assert result.passed, result.message()
    assert "data x0, outputs y" in result.details[0]


def test_a_leaf_output_cannot_be_saved():
    x = nn.Variable((2, 3))
    model = Model("leaf", [x], [x], seeded_inputs([x]))
    result = saved_check(Conversion([x], [x], parameters={}), model, model.input_data, options=ALL)
    assert result.figures["saved"].startswith("unsaveable: output 0 is a leaf")


def test_the_matrix_row_carries_the_saved_check(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the check writes its file
    device = Device.select("cpu")
    spec = default_converters().get("channel_last")
    model = zoo_model("lenet")
    verdict = run_case(spec, lambda: model, device, "channel_last-lenet-cpu", "lenet",
                       CaseSettings(speed_rounds=1, saved=ALL))
    assert not verdict.failures and verdict.row.saved == "identical"
    assert verdict.row.to_json()["saved_bytes"] == verdict.row.saved_bytes > 0
    off = run_case(spec, lambda: model, device, "channel_last-lenet-cpu", "lenet",
                   CaseSettings(speed_rounds=1, saved=SavedOptions(mode="off")))
    assert off.row.saved == "off" and off.row.saved_bytes is None
    assert not os.listdir(tmp_path)  # the temporary file is gone


def test_a_row_that_failed_already_is_not_saved():
    device = Device.select("cpu")
    spec = default_converters().get("bn_fold").variant("too_strict", tolerance=TOLERANCES["exact"])
    model = zoo_model("lenet")
    verdict = run_case(spec, lambda: model, device, "too_strict-lenet-cpu", "lenet",
                       CaseSettings(speed_rounds=1, saved=ALL))
    assert verdict.failures and verdict.row.saved is None


def test_assert_saved_passes_keeps_the_file_where_asked_and_fails_with_the_reason(tmp_path):
    from gcverify.api import assert_saved
    model, conversion = _converted("channel_last")
    result = assert_saved(model, conversion, path=str(tmp_path / "kept.nnp"))
    assert result.figures["saved"] == "identical" and (tmp_path / "kept.nnp").is_file()
    y = F.relu(python_identity(model.outputs[0]))
    with pytest.raises(AssertionError, match=r"does not survive \.nnp\n\[saved\] cannot be saved as \.nnp: "
                                             r"PythonIdentity #\d+ is a Python function"):
        assert_saved(model, y)


def test_a_graph_with_random_functions_is_compared_by_structure_only():
    x = nn.Variable((4, 16))
    y = F.dropout(F.tanh(x), p=0.5)
    model = Model("random", [x], [y], seeded_inputs([x]))
    result = saved_check(Conversion([y], [x], parameters={}), model, model.input_data, options=ALL)
    assert result.passed, result.message()
    assert result.figures["saved"] == "same functions (random: outputs not compared)"
    assert "random functions (Dropout) draw anew" in result.summary
