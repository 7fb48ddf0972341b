"""Converter registry: selection, expectations, user converters, tolerance overrides."""
import pytest

from gcverify.core.model import Model
from gcverify.core.expectations import Tolerance, TOLERANCES
from gcverify.core.registry import converter, ConverterRegistry, ConverterSpec, UnknownConverterError
from gcverify.api import default_converters


def test_builtin_names_are_deterministic_ids():
    names = default_converters().names()
    for expected in ("bn_fold", "bn_linear", "channel_last", "channel_roundtrip", "fixed_point",
                     "identity", "bn_fold_opposite", "channel_roundtrip_unrestored", "nnabla_bn_fold", "nnabla_bn_self_fold", "nnabla_channel_last",
                     "nnabla_channel_roundtrip"):
        assert expected in names
    assert all(default_converters().get(n).kind == "peer" for n in names if n.startswith("nnabla_"))


def test_select_by_name_glob_and_kind_keeps_registry_order():
    reg = default_converters()
    assert [s.name for s in reg.select("identity,bn_fold")] == ["bn_fold", "identity"]
    assert all(s.kind == "peer" for s in reg.select("peer"))
    assert {s.name for s in reg.select("nnabla_channel_*")} == {"nnabla_channel_last",
                                                               "nnabla_channel_roundtrip"}
    assert len(reg.select("")) == len(reg)


def test_unknown_converter_lists_known_ones():
    with pytest.raises(UnknownConverterError, match="'bn_fould' matches no converter; known converters: bn_fold"):
        default_converters().select("bn_fould")


def test_user_converter_marker_and_clash():
    @converter("mine", tolerance="exact")
    def mine(model):
        return model.outputs
    reg = ConverterRegistry()
    reg.add_marked({"mine": mine, "other": 3})
    assert reg.get("mine").tolerance == TOLERANCES["exact"]

    @converter("mine")
    def impostor(model):
        return model.outputs
    with pytest.raises(ValueError, match="two different converters"):
        reg.add(impostor)


@pytest.mark.parametrize("bad", ["bn-fold", "", "has space"])
def test_converter_names_must_fit_test_ids(bad):
    with pytest.raises(ValueError, match="identifier"):
        ConverterSpec(bad, lambda m: m.outputs)


def test_model_overrides_tolerance():
    spec = default_converters().get("bn_fold")
    m = Model("m", [], [], [], tolerance={"bn_fold": {"atol": 1e-3}, "*": {"rtol": 1e-2}})
    tol = spec.tolerance_for(m)
    assert (tol.rtol, tol.atol) == (1e-2, 1e-3)
    assert spec.tolerance_for(Model("n", [], [], [])) == spec.tolerance


def test_tolerance_presets_and_bad_keys():
    assert Tolerance().merged({"preset": "quantizer"}) == TOLERANCES["quantizer"]
    with pytest.raises(ValueError, match="unknown tolerance key"):
        Tolerance().merged({"atool": 1})
    assert TOLERANCES["exact"].describe() == "exact"
