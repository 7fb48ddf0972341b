"""Converters chained as one spec: composed layouts and maps, each step's layer rules judged on
its own graphs, tolerances added up, the first conversion kept."""
from dataclasses import replace

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

from gcverify.api import default_converters
from gcverify.core.expectations import TOLERANCES, Functions, Removes
from gcverify.core.model import Model, build_privately, seeded_inputs
from gcverify.deploy.chain import Chain, chain_tolerance
from gcverify.testing import zoo_model
from gcverify.verify.case import CaseSettings, run_case
from gcverify.verify.devices import Device
from gcverify.verify.saved import SavedOptions

SETTINGS = CaseSettings(speed_rounds=1, saved=SavedOptions(mode="all"))


def _run(names, model, extra=None):
    """The chain of registered converters ``names`` as one case; ``extra``: a layer rule to add
    to a step, by name."""
    registry = default_converters()
    specs = [registry.get(n) for n in names]
    specs = [replace(s, layers=s.layers + (extra[s.name],)) if extra and s.name in extra else s for s in specs]
    chain = Chain(specs)
    verdict = run_case(chain.spec, lambda: model, Device.select("cpu"), "case", model.name, SETTINGS)
    return chain, verdict


def test_fold_then_channel_last_composes_layouts_and_maps_and_is_saved():
    chain, verdict = _run(["bn_fold", "channel_last"], zoo_model("lenet"))
    assert not verdict.failures, verdict.message()
    assert chain.spec.name == "bn_fold_then_channel_last" and chain.spec.cpu_emulation
    assert chain.conversion.input_perms == [(0, 2, 3, 1)] and chain.conversion.var_map
    assert verdict.row.removed == {"BatchNormalization": 3} and verdict.row.saved == "identical"
    assert len(chain.step_seconds) == 2


def test_each_steps_rules_are_judged_on_its_own_graphs():
    # identity must leave *its* input unchanged; against the original (channel-first) the
    # histogram did change, so only a per-step judgement lets this chain pass
    chain, verdict = _run(["channel_last", "identity"], zoo_model("lenet"))
    assert not verdict.failures, verdict.message()
    rules = [r.check(None, None) for r in chain.spec.layers]
    assert all(ok for ok, _ in rules)
    assert any(text.startswith("step 2 identity: histogram unchanged") for _, text in rules)


def _training_bn(x):
    return PF.batch_normalization(PF.convolution(x, 3, (3, 3), name="c"), batch_stat=True, name="bn")


def test_a_step_whose_rule_fails_is_named():
    x = nn.Variable((2, 3, 6, 6))
    y, params = build_privately(_training_bn, x)
    model = Model("training_bn", [x], [F.relu(y)], seeded_inputs([x]), params)
    with pytest.warns(Warning):  # a training-mode BN: bn_fold keeps it, and says why (a valid keep)
        _, verdict = _run(["identity", "bn_fold"], model)
    assert not verdict.failures, verdict.message()
    with pytest.warns(Warning):  # a rule that cannot hold: the chain names the step it belongs to
        _, verdict = _run(["identity", "bn_fold"], model, extra={"bn_fold": Removes(Functions("Convolution"))})
    assert any("step 2 bn_fold: Convolution: 1 -> 1 (1 left that should be gone)" in f
               for f in verdict.failures), verdict.failures
    assert verdict.row.saved is None  # a failed row is not saved


def test_tolerances_add_up_and_one_converter_is_its_own_spec():
    total = chain_tolerance([TOLERANCES["float32"], TOLERANCES["quantizer"]])
    assert (total.rtol, total.atol, total.rms, total.noise, total.name) == (
        0.0, 0.2 + 1e-7, 0.1, 4.0, "float32+quantizer")
    spec = default_converters().get("channel_last")
    single = Chain([spec]).spec
    assert (single.name, single.layers, single.tolerance, single.speed) == (
        spec.name, spec.layers, spec.tolerance, spec.speed)
    with pytest.raises(ValueError, match="at least one converter"):
        Chain([])


def test_the_first_conversion_is_kept_when_a_case_converts_again():
    model = zoo_model("lenet")
    chain = Chain([default_converters().get("bn_fold")])
    first = chain.convert(model)
    second = chain.convert(model)
    assert chain.conversion is first and second is not first and len(chain.step_seconds) == 1
