"""Matrix rows on networks shaped like users' (gcverify/zoo/field.py), and planted wrong
conversions of them: the verifier must pass what is right and fail what is wrong, saying why.

Each planted converter is a small GraphPass run through our Converter API, as a user's
converter would be."""
import nnabla as nn
import numpy as np
import pytest

import converters as GC
from converters.rewrite import GraphPass
from gcverify.builtin.ours import conversion_of
from gcverify.core.expectations import TOLERANCES, Functions, Removes
from gcverify.core.registry import ConverterSpec
from gcverify.verify.keep_rules import bn_fold_keep
from gcverify.zoo import seeded_spec, zoo_spec
from gcverify.zoo import field


def planted(name, graph_pass, **expectations):
    """A converter spec running ``graph_pass`` through Converter(passes=[...])."""
    def convert(model):
        c = GC.Converter(passes=[graph_pass], params=model.params)
        return conversion_of(c, c.convert(list(model.outputs), list(model.inputs)), model)
    return ConverterSpec(name, convert, **expectations)


class ReplaceConstant(GraphPass):
    """Reads a new zero leaf where the original reads a constant of ``shape``."""

    def __init__(self, shape, declare):
        self.shape, self.declare = tuple(shape), declare

    def input_map(self, view, b, plan):
        mapped = {}
        for v in view.inputs:
            if tuple(v.shape) == self.shape and v.parent is None and v.d.any():
                zero = nn.Variable.from_numpy_array(np.zeros(v.shape, np.float32))
                if self.declare:  # named as a new parameter: the wiring check lets it through
                    b.adopt(zero, v, "zeroed")
                mapped[v] = zero
        return mapped


def _first_lines(verdict):
    return [f.splitlines()[0] for f in verdict.failures]


# --- 1. constants the graph holds -------------------------------------------------------------
def test_the_attention_model_with_its_causal_mask_passes_identity_and_layout(run_row):
    for converter in ("identity", "bn_fold", "bn_linear", "low_rank"):
        verdict = run_row(converter, "attention")
        assert verdict.failures == [], verdict.message()
    assert verdict.row.functions_changed > 0  # low rank split the Affines


@pytest.mark.parametrize("declare", [False, True], ids=["undeclared", "declared"])
def test_a_conversion_that_zeroes_the_mask_fails_naming_the_constant(run_row, declare):
    spec = planted("zero_mask", ReplaceConstant((1, 8, 8), declare))
    verdict = run_row(spec, "attention", converters=[spec])
    text = verdict.message()
    assert any(line.startswith("[numeric] outputs differ") for line in _first_lines(verdict)), text
    assert "constant of shape (1, 8, 8) read by Broadcast" in text and "is not read by the converted graph" in text
    if not declare:  # a leaf nobody feeds or declares is named by the wiring check as well
        assert any(line.startswith("[inputs] the converted graph reads 1 leaf variable(s)") for line in
                   _first_lines(verdict)), text


def test_lstm_zero_states_are_constants_not_hidden_inputs(run_row):
    for converter in ("identity", "bn_fold", "fixed_point", "low_rank"):
        verdict = run_row(converter, "lstm")
        assert verdict.failures == [], verdict.message()


# --- 2. stochastic graphs ----------------------------------------------------------------------
class Reseed(GraphPass):
    """Gives every random function another seed (or, with ``drop``, a constant zero instead)."""

    def __init__(self, drop=False):
        self.drop = drop

    def rewrite(self, f, inputs, b, plan):
        if "seed" not in f.info.args:
            return None
        if self.drop:
            return b.call("Constant", [], {"val": 0.0, "shape": list(f.outputs[0].shape)})
        return b.call(f.info.type_name, inputs, dict(f.info.args, seed=f.info.args["seed"] + 1))


def test_a_noisy_net_is_verified_with_fixed_seeds_and_says_so(run_row):
    for converter in ("identity", "bn_fold", "bn_linear", "channel_last"):
        verdict = run_row(converter, "noisy_dqn")
        assert verdict.failures == [], verdict.message()
        assert verdict.row.notes[0] == ("stochastic: 1 random function(s) (Randn) draw with fixed seeds in "
                                        "both graphs")


@pytest.mark.parametrize("drop", [False, True], ids=["reseeded", "dropped"])
def test_a_conversion_that_changes_the_random_draws_fails_with_one_clear_line(run_row, drop):
    spec = planted("reseed", Reseed(drop))
    lines = _first_lines(run_row(spec, "noisy_dqn", converters=[spec]))
    assert "[random] the conversion changed the graph's random functions: the two graphs no longer draw " \
           "the same numbers" in lines, lines


# --- 3. correct refusals and keeps ---------------------------------------------------------------
class KeepEveryBN(GraphPass):
    """Keeps every BN, claiming a reason (or, with ``silent``, none)."""

    def __init__(self, silent=False):
        self.silent = silent

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name == "BatchNormalization" and not self.silent:
            b.note(f, "kept", "I prefer to keep it")
        return None


def test_a_bn_after_a_concatenate_is_a_valid_keep_and_the_row_says_why(run_row):
    verdict = run_row("bn_fold", "concat_bn")
    assert verdict.failures == [], verdict.message()
    assert verdict.row.kept == ["kept BatchNormalization 'concat-bn/bn': its input comes from Concatenate "
                                "#2, which has no weights to fold into (valid: its input comes from "
                                "Concatenate, which has no weight)"]
    assert verdict.row.removed == {"BatchNormalization": 1}  # the other BN was folded


@pytest.mark.parametrize("silent, wrong, why", [
    (False, 1, "kept BatchNormalization 'out-bn/bn': 'I prefer to keep it', but the verifier finds nothing "
               "that stops converting it"),
    (True, 2, "BatchNormalization 'out-bn/bn' left without a reason (the verifier finds nothing that stops "
              "converting it)")])
def test_unexplained_or_invalid_keeps_fail(run_row, silent, wrong, why):
    spec = planted("lazy_fold", KeepEveryBN(silent), layers=(Removes(Functions("BatchNormalization"),
                                                                     may_keep=bn_fold_keep),))
    verdict = run_row(spec, "concat_bn", converters=[spec])
    assert _first_lines(verdict) == ["[layers] layer expectations not met: BatchNormalization: 2 -> 2 "
                                     "({} left that should be gone)".format(wrong)], verdict.message()
    assert why in verdict.message()
    if silent:  # even a keep that would be valid needs its reason said
        assert "BatchNormalization 'concat-bn/bn' left without a reason (a valid one exists: its input " \
               "comes from Concatenate, which has no weight)" in verdict.message()


def test_a_model_can_accept_a_keep_the_verifier_cannot_judge(run_row):
    spec = planted("lazy_fold", KeepEveryBN(), layers=(Removes(Functions("BatchNormalization"),
                                                               may_keep=bn_fold_keep),))
    accepting = seeded_spec("concat_bn_accepting", field.concat_bn, [(2, 3, 8, 8)],
                            accept_kept={"lazy_*": ["BatchNormalization 'out-bn*'"]})
    verdict = run_row(spec, accepting, converters=[spec])
    assert verdict.failures == [], verdict.message()
    assert "kept BatchNormalization 'out-bn/bn': I prefer to keep it (accepted by the model)" in verdict.row.kept


# --- 4. layout rows convert only the inputs that have a layout -----------------------------------
@pytest.mark.parametrize("converter", ["channel_last", "bn_fold_channel_last", "channel_roundtrip"])
def test_layout_rows_convert_the_image_and_pass_the_vector_through(run_row, converter):
    verdict = run_row(converter, "two_inputs")
    assert verdict.failures == [], verdict.message()
    assert "layout: converted input(s) [0]; passed through input(s) [1] ((2, 5))" in verdict.row.notes


# --- 5. a row where the converter did nothing it was asked to do ---------------------------------
def test_fixed_point_quantizes_relu6_hard_sigmoid_and_swish(run_row):
    verdict = run_row("fixed_point", "relu6_net")
    assert verdict.failures == [], verdict.message()
    assert {"ReLU6", "HardSigmoid", "Swish"} <= set(verdict.row.histogram_after)  # followed, not replaced
    quantizers = verdict.row.histogram_after["FixedPointQuantize"]
    activations = sum(verdict.row.histogram_before[k] for k in ("ReLU6", "HardSigmoid", "Swish"))
    weights = sum(verdict.row.histogram_before[k] for k in ("Convolution", "DepthwiseConvolution", "Affine"))
    assert quantizers >= activations + weights


def test_every_row_says_how_many_functions_it_changed(run_row):
    assert (run_row("identity", "lenet").row.functions_changed, run_row("identity", "lenet").row.functions_added) \
        == (0, 0)
    folded = run_row("bn_fold", "lenet").row
    assert folded.functions_changed == 3 + 3 and folded.functions_added == 3  # 3 BN gone, 3 layers refolded


# --- 7. side effects and vacuous passes -----------------------------------------------------------
def _training_bn(x):
    import nnabla.functions as F
    import nnabla.parametric_functions as PF
    h = PF.batch_normalization(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c"), batch_stat=True, name="bn")
    return PF.affine(F.relu(h), 3, name="fc")


def test_qdq_calibration_leaves_training_mode_statistics_alone(run_row):
    verdict = run_row("qdq", seeded_spec("training_bn", _training_bn, [(2, 3, 6, 6)]))
    assert not any(line.startswith("[untouched]") for line in _first_lines(verdict)), verdict.message()


def _constant_output(x):
    import nnabla.parametric_functions as PF
    return PF.affine(x * 0.0, 3, name="fc")  # the input never reaches the output


def _one_dead_output(x):
    import nnabla.parametric_functions as PF
    return [PF.affine(x, 3, name="fc"), PF.affine(x * 0.0, 3, name="dead")]


def test_a_model_whose_output_ignores_its_input_fails_every_row_with_the_reason(run_row):
    for converter in ("identity", "nnabla_bn_fold"):
        verdict = run_row(converter, seeded_spec("ignores_input", _constant_output, [(2, 4)]))
        assert not verdict.peer  # the model's problem, not the peer's: a failure, not an xfail
        assert _first_lines(verdict) == ["[reference] no output of the model changes when its input changes "
                                         "(constant weights or a dead branch?): a comparison with it proves "
                                         "nothing"]


def test_one_dead_output_among_live_ones_is_a_note(run_row):
    verdict = run_row("identity", seeded_spec("one_dead", _one_dead_output, [(2, 4)]))
    assert verdict.failures == [] and verdict.row.notes == ["output(s) [1] do not change with the input"]


def test_the_field_models_are_in_the_default_matrix():
    for name in ("attention", "lstm", "noisy_dqn", "concat_bn", "two_inputs", "relu6_net"):
        assert zoo_spec(name).default
    assert TOLERANCES["exact"].exact
