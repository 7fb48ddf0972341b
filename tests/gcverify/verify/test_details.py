"""The HTML report's details of a case: the per-layer error profile (gcverify.verify.profile)
and the graphs with the changed functions highlighted (gcverify.verify.details), on real
conversions of LeNet, with a wrong weight planted."""
import math

import nnabla as nn
import numpy as np
import pytest

from converters.graph_view import GraphView
from gcverify.api import convert
from gcverify.core.conversion import Conversion
from gcverify.core.expectations import TOLERANCES
from gcverify.report.row import Row
from gcverify.testing import zoo_model
from gcverify.verify.details import ADDED_COLOR, REMOVED_COLOR, attach_details, changed_functions
from gcverify.verify.profile import error_profile, sqnr_db

F32 = TOLERANCES["float32-fixed"]  # a fixed tolerance: profiles compare intermediates, which have no floor


@pytest.fixture
def lenet():
    return zoo_model("lenet")


def _profile(model, conversion, tol=F32):
    return error_profile(model, conversion, tol, GraphView(model.outputs, model.params))


def test_sqnr_is_signal_over_noise_in_decibels():
    e = np.ones(100)
    assert sqnr_db(e + 0.01, e) == pytest.approx(40.0)  # 100 / (100 * 1e-4) = 1e4
    assert sqnr_db(e, e) is None  # exact: infinite
    assert sqnr_db(np.ones(3), np.zeros(3)) == -math.inf  # noise without signal


def test_identity_profile_is_exact_at_every_function(lenet):
    entries, note = _profile(lenet, convert("identity", lenet))
    assert note is None
    assert [e["position"] for e in entries] == list(range(12))
    assert all(e["relative_error"] == 0 and e["sqnr_db"] is None and e["within_tolerance"] for e in entries)
    assert entries[4]["function"] == "Convolution 'conv2/conv'" and entries[4]["shape"] == "4x16x11x11"


def test_a_planted_wrong_weight_shows_where_the_graph_drifts(lenet):
    conversion = convert("bn_fold", lenet)
    view = GraphView(lenet.outputs, lenet.params)
    bn2 = [f for f in view if view.describe(f) == "BatchNormalization 'conv2-bn/bn'"][0]
    folded = conversion.var_map[bn2.outputs[0]].parent  # the conv that now computes conv2 + BN
    folded.inputs[1].d = folded.inputs[1].d * 1.01
    entries, _ = _profile(lenet, conversion)
    beyond = [e for e in entries if not e["within_tolerance"]]
    assert beyond[0]["function"] == "BatchNormalization 'conv2-bn/bn'" and beyond[0]["position"] == 5
    assert all(e["within_tolerance"] for e in entries if e["position"] < 5)
    # everything downstream of the planted weight drifts too, by about the planted 1%
    assert {e["position"] for e in beyond} == {e["position"] for e in entries if e["position"] >= 5}
    assert 1e-3 < beyond[0]["relative_error"] < 0.05 and beyond[0]["sqnr_db"] < 60


def test_a_quantizer_profile_has_finite_sqnr_everywhere(lenet):
    entries, _ = _profile(lenet, convert("qdq", lenet), TOLERANCES["quantizer"])
    assert len(entries) == 12 and all(10 < e["sqnr_db"] < 80 for e in entries)


def test_a_channel_last_graph_is_profiled_through_the_cpu_emulation(lenet):
    entries, note = _profile(lenet, convert("channel_last", lenet))
    assert "CPU emulation" in note
    assert len(entries) == 12 and all(e["within_tolerance"] for e in entries)


def test_without_a_variable_map_there_is_no_profile_and_a_note(lenet):
    conversion = convert("identity", lenet)
    entries, note = _profile(lenet, Conversion(conversion.outputs, conversion.inputs,
                                               parameters=conversion.parameters))
    assert entries is None and "reports no variable map" in note


def test_changed_functions_follow_the_variable_map(lenet):
    before = GraphView(lenet.outputs, lenet.params)
    conversion = convert("bn_fold", lenet)
    after = GraphView(conversion.outputs, conversion.parameters)
    removed, added, how = changed_functions(before, after, conversion.var_map)
    assert how == ""
    # the 3 BNs went, and the 3 layers they folded into have new weights
    assert sorted(f.info.type_name for f in removed) == ["Affine", "BatchNormalization",
                                                         "BatchNormalization", "BatchNormalization",
                                                         "Convolution", "Convolution"]
    assert sorted(g.info.type_name for g in added) == ["Affine", "Convolution", "Convolution"]
    identity = convert("identity", lenet)
    assert changed_functions(before, GraphView(identity.outputs, identity.parameters),
                             identity.var_map)[:2] == ([], [])


def test_without_a_variable_map_the_types_whose_count_changed_are_highlighted(lenet):
    before = GraphView(lenet.outputs, lenet.params)
    conversion = convert("bn_fold", lenet)
    after = GraphView(conversion.outputs, conversion.parameters)
    removed, added, how = changed_functions(before, after, {})
    assert {f.info.type_name for f in removed} == {"BatchNormalization"} and added == []
    assert "no variable map" in how


def test_details_are_attached_only_when_wanted(lenet):
    conversion = convert("bn_fold", lenet)
    row = Row("bn_fold-lenet-cpu")
    attach_details(row, lenet, conversion, F32, wanted=False)
    assert row.dot_before is None and row.error_profile is None
    attach_details(row, lenet, conversion, F32, wanted=True)
    assert row.dot_before.count(REMOVED_COLOR) == 6 and row.dot_after.count(ADDED_COLOR) == 3
    assert "6 of 12 functions\nremoved or rewritten (red)" in row.dot_before
    assert len(row.error_profile) == 9 and row.profile_note is None  # 3 folded pairs: BN only
    assert Row.from_json(row.to_json()).error_profile == row.error_profile


def test_a_picture_that_fails_never_fails_the_case(lenet, monkeypatch):
    import gcverify.verify.details as details
    monkeypatch.setattr(details, "to_dot", lambda *a, **k: 1 / 0)
    row = Row("x")
    attach_details(row, lenet, convert("identity", lenet), F32, wanted=True)
    assert row.dot_before is None and row.profile_note.startswith("no graph pictures: ZeroDivisionError")


def test_the_profile_restores_what_it_made_persistent(lenet):
    conversion = convert("identity", lenet)
    flags = [v.persistent for f in GraphView(lenet.outputs) for v in f.outputs]
    _profile(lenet, conversion)
    assert [v.persistent for f in GraphView(lenet.outputs) for v in f.outputs] == flags
    nn.forward_all(list(lenet.outputs))  # the graph still runs
