"""The matrix rows of NNabla's other modifiers (issue #13): each of ours passes on a small
model and does there what its modifier is for; each NNabla peer's known bug
(docs/nnabla_bugs.md) is flagged by its row with the right diagnosis, while ours passes on
the same graph; every new expectation fails a planted wrong conversion (a check nobody saw
fail proves nothing). Verdicts come from the matrix runner (the ``matrix_verdict`` fixture),
so each is exactly the row ``--gc-models=<graph> --gc-converters=<converter>`` reports.
"""
from dataclasses import replace

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

import converters as GC
from converters.rewrite import GraphPass, run_passes
from gcverify.builtin import compat
from gcverify.builtin.compat import COMPAT
from gcverify.core.conversion import Conversion
from gcverify.core.model import ModelSpec
from gcverify.plugin.options import OPTIONS
from gcverify.plugin.session import Session
from gcverify.verify.model_copy import copy_leaf
from gcverify.zoo import randomize_parameters

IMAGE = (2, 3, 8, 8)


# --- small graphs --------------------------------------------------------------------------
def _conv(h, name, maps=4, kernel=3, with_bias=False):
    return PF.convolution(h, maps, (kernel, kernel), pad=(kernel // 2,) * 2, with_bias=with_bias, name=name)


def _bn(h, name, **kw):
    return PF.batch_normalization(h, batch_stat=False, name=name, **kw)


def residual_block(x):
    """ReLU stem, conv -> BN -> ReLU -> conv (with bias) -> BN -> Add2(., h) -> ReLU, pooled
    affine -> BN: one fusable chain, bias-less layers next to BNs, a bias to quantize, an
    Affine for test mode's Dropout."""
    h = F.relu(_bn(_conv(F.relu(x), "c1"), "bn1"))
    h = F.relu(F.add2(_bn(_conv(h, "c2", with_bias=True), "bn2"), h))
    return _bn(PF.affine(F.average_pooling(h, (2, 2)), 5, with_bias=False, name="fc"), "fc-bn")


def downsampling_block(x):
    """ResNet's projection block: Add2(BN(conv(h)), BN(conv1x1(h))) -> ReLU."""
    h = F.relu(x)
    return F.relu(F.add2(_bn(_conv(h, "main", maps=6), "main-bn"), _bn(_conv(h, "short", 6, 1), "short-bn")))


def two_widths(x):
    """Two fusable blocks of different widths (4 and 6 channels)."""
    h = F.relu(F.add2(_bn(_conv(F.relu(x), "a", maps=3), "a-bn"), x))
    g = _conv(h, "widen", maps=6)
    return F.relu(F.add2(_bn(_conv(g, "b", maps=6), "b-bn"), g))


def bn_without_scale(x):
    return F.relu(_bn(_conv(F.relu(x), "c"), "bn", no_scale=True))


def input_read_second(x):
    """The graph input is read only as Add2's second operand (never as an input 0)."""
    return F.add2(F.relu(_bn(_conv(F.relu(x), "c", maps=3), "bn")), x)


def deconv_without_bias(x):
    return _bn(PF.deconvolution(F.relu(x), 4, (2, 2), stride=(2, 2), with_bias=False, name="up"), "bn")


def grouped_deconv(x):
    return PF.deconvolution(F.relu(x), 8, (2, 2), stride=(2, 2), group=2, name="up")


def shared_weight(x):
    h = F.relu(x)
    return F.add2(_conv(h, "shared"), _conv(F.sigmoid(h), "shared"))


def spec_of(graph, shape=IMAGE):
    def build(seed=0):
        x = nn.Variable(shape)
        y = graph(x)
        randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
        return [x], [y]
    return ModelSpec(graph.__name__, build)


def _lines(verdict):
    assert verdict.failures, "gcverify passed {}: {}".format(verdict.row.id, verdict.row)
    return [f.splitlines()[0] for f in verdict.failures]


def _passes(matrix_verdict, converter, graph):
    verdict = matrix_verdict(converter, spec_of(graph))
    assert verdict.failures == [], verdict.message()
    return verdict


# --- ours ----------------------------------------------------------------------------------
@pytest.mark.parametrize("row, removed, added", [
    ("fused_bn", {"BatchNormalization": 1, "Add2": 1, "ReLU": 1}, {"FusedBatchNormalization": 1}),
    ("unfused_bn", {}, {}),
    ("batch_stat_off", {}, {}),
    ("test_mode", {}, {}),
    ("identity_modifier", {}, {}),
    ("no_grad", {}, {}),
    ("add_bias", {}, {}),
    ("prune", {}, {}),
    ("remove_function", {"BatchNormalization": 3}, {}),
    # the inputs of c1, c2 and fc, their weights, c2's bias: 7 tensors, 7 recorders
    ("qat_recording", {}, {"MinMaxMinMaxRecorder": 7}),
    # a pair for each but the bias, which goes on its accumulator grid
    ("qat_qdq", {}, {"QuantizeLinear": 6, "DequantizeLinear": 6, "Div2": 1, "Round": 1, "Mul2": 1}),
])
def test_each_row_passes_on_a_residual_block(matrix_verdict, row, removed, added):
    verdict = _passes(matrix_verdict, row, residual_block)
    assert (verdict.row.removed, verdict.row.added) == (removed, added)
    assert verdict.row.max_abs_error == 0.0  # exact on CPU, fused_bn too (its tolerance is float32)


def test_every_compat_row_is_tested_here():
    names = [s.name for s in COMPAT]
    assert names == ["fused_bn", "unfused_bn", "batch_stat_off", "test_mode", "identity_modifier",
                     "no_grad", "add_bias", "prune", "remove_function", "qat_recording", "qat_qdq"]


def test_a_downsampling_block_fuses_one_bn_and_keeps_the_shortcut(matrix_verdict):
    verdict = _passes(matrix_verdict, "fused_bn", downsampling_block)
    assert verdict.row.removed == {"BatchNormalization": 1, "Add2": 1, "ReLU": 1}


# --- NNabla's peers: each known bug, with its diagnosis --------------------------------------
def _numbers_wrong(verdict):
    lines = _lines(verdict)
    assert any(line.startswith("[numeric] outputs differ") for line in lines), lines
    return lines


def _crashed(verdict, error):
    line = _lines(verdict)[0]
    assert line.startswith("NNabla's converter raised " + error), line
    return line


def test_nnablas_fuser_uses_fresh_parameters_and_drops_the_shortcut_bn(matrix_verdict):
    _numbers_wrong(matrix_verdict("nnabla_fused_bn", spec_of(residual_block)))
    lines = _numbers_wrong(matrix_verdict("nnabla_fused_bn", spec_of(downsampling_block)))
    assert lines[0].startswith("[layers] layer expectations not met: BatchNormalization -> Add2 -> ReLU: "
                               "1 matched; FusedBatchNormalization 0 -> 1, BatchNormalization 2 -> 0"), lines


def test_nnablas_unfuser_uses_fresh_parameters_named_alike_for_every_bn(matrix_verdict):
    _numbers_wrong(matrix_verdict("nnabla_unfused_bn", spec_of(residual_block)))
    # every BN it creates is PF.batch_normalization's default "bn": the second one of another
    # width collides with the first
    line = _crashed(matrix_verdict("nnabla_unfused_bn", spec_of(two_widths)), "ValueError")
    assert 'The size of existing parameter "beta" (1, 3, 1, 1) is different' in line
    _passes(matrix_verdict, "unfused_bn", two_widths)


@pytest.mark.parametrize("peer, ours", [("nnabla_batch_stat_off", "batch_stat_off"),
                                        ("nnabla_test_mode", "test_mode")])
def test_nnablas_test_mode_crashes_on_a_bn_without_scale(matrix_verdict, peer, ours):
    line = _crashed(matrix_verdict(peer, spec_of(bn_without_scale)), "TypeError")
    assert "missing 1 required positional argument: 'variance'" in line
    _passes(matrix_verdict, ours, bn_without_scale)


def test_nnablas_identity_modifier_replaces_an_input_only_where_it_is_read_first(matrix_verdict):
    lines = _lines(matrix_verdict("nnabla_identity_modifier", spec_of(input_read_second)))
    assert lines[0] == ("[inputs] the converted graph reads 1 leaf variable(s) that are neither inputs it "
                        "exposes, nor parameters, nor constants of the original: data fed to its stated "
                        "inputs would not reach them"), lines
    # the input left in place holds no data of this case, so the numbers may differ too
    assert all(line.startswith("[numeric] outputs differ") for line in lines[1:]), lines
    _passes(matrix_verdict, "identity_modifier", input_read_second)


def test_nnablas_no_grad_misses_parameters_outside_the_current_scope(matrix_verdict):
    lines = _lines(matrix_verdict("nnabla_no_grad", spec_of(residual_block)))
    # c1, c2, fc weights, c2's bias and the 3 BNs' beta and gamma; of 16 with the BN statistics
    assert lines == ["[layers] layer expectations not met: parameters needing a gradient: 10 -> 10 of 16 "
                     "(expected 0 left)"]
    assert _passes(matrix_verdict, "no_grad", residual_block)


def test_nnablas_add_bias_sizes_a_deconvolution_bias_by_its_inputs(matrix_verdict):
    assert "value error in setup_impl" in _crashed(
        matrix_verdict("nnabla_add_bias", spec_of(deconv_without_bias)), "RuntimeError")
    _passes(matrix_verdict, "add_bias", deconv_without_bias)


def test_nnablas_pruner_crashes_on_a_grouped_deconvolution(matrix_verdict):
    spec = spec_of(grouped_deconv, (2, 6, 4, 4))
    assert "could not be broadcast" in _crashed(matrix_verdict("nnabla_prune", spec), "ValueError")
    verdict = matrix_verdict("prune", spec)
    assert verdict.failures == [], verdict.message()


def test_nnablas_remove_function_agrees_with_ours(matrix_verdict):
    for converter in ("nnabla_remove_function", "remove_function"):
        assert _passes(matrix_verdict, converter, residual_block).row.removed == {"BatchNormalization": 3}


def test_nnablas_recording_gives_a_shared_weight_one_recorder_per_reader(matrix_verdict):
    lines = _lines(matrix_verdict("nnabla_qat_recording", spec_of(shared_weight)))
    assert lines == ["[layers] layer expectations not met: inputs of Convolution/Deconvolution/"
                     "DepthwiseConvolution/DepthwiseDeconvolution/Affine: 3 tensors, 4 recorders, 0 read "
                     "unrecorded (expected one recorder per tensor)"]
    _passes(matrix_verdict, "qat_recording", shared_weight)


def test_nnablas_qat_flow_puts_biases_on_int8_and_scales_that_cover_half_a_range(matrix_verdict):
    lines = _numbers_wrong(matrix_verdict("nnabla_qat_qdq", spec_of(residual_block)))
    # c2's bias gets an int8 QuantizeLinear at s_x s_w instead of its accumulator grid; the
    # numbers also differ where (M - m) / 255 with zero point 0 clips the upper half of a range
    assert ": 6 tensors, 8 QuantizeLinear/8 DequantizeLinear, 0 read without them, 1 biases off their " \
           "grid, 0 recorders left" in lines[0], lines
    _passes(matrix_verdict, "qat_qdq", residual_block)


# --- planted wrong conversions, judged by a row's own spec ----------------------------------
def _judged_as(row, convert):
    """``convert`` under the name ``planted``, judged exactly as our row ``row``."""
    return replace(next(s for s in compat.COMPAT if s.name == row), name="planted", convert=convert)


def _failures(matrix_verdict, row, convert, graph=residual_block):
    verdict = matrix_verdict("planted", spec_of(graph), extra=[_judged_as(row, convert)])
    assert verdict.failures, "the planted conversion passed {}'s checks".format(row)
    return [f.splitlines()[0] for f in verdict.failures]


def nothing_done(model):
    """The model's own graph, as if converted."""
    return Conversion(list(model.outputs), list(model.inputs))


@pytest.mark.parametrize("row, expected", [
    ("fused_bn", ["[layers] layer expectations not met: BatchNormalization -> Add2 -> ReLU: 1 matched; "
                  "FusedBatchNormalization 0 -> 0, BatchNormalization 3 -> 3, Add2 1 -> 1, ReLU 3 -> 3 "
                  "(expected each fused into one FusedBatchNormalization)"]),
    ("no_grad", ["[layers] layer expectations not met: parameters needing a gradient: 10 -> 10 of 16 "
                 "(expected 0 left)"]),
    ("add_bias", ["[layers] layer expectations not met: Convolution/Deconvolution/Affine without bias "
                  "next to a BatchNormalization: 2 -> 2 (expected 0 left)"]),
    ("qat_recording", ["[layers] layer expectations not met: inputs of Convolution/Deconvolution/"
                       "DepthwiseConvolution/DepthwiseDeconvolution/Affine: 7 tensors, 0 recorders, 7 read "
                       "unrecorded (expected one recorder per tensor)"]),
])
def test_a_conversion_that_does_nothing_fails_the_structural_rules(matrix_verdict, row, expected):
    assert _failures(matrix_verdict, row, nothing_done) == expected


@pytest.mark.parametrize("row", ["prune", "remove_function", "qat_qdq"])
def test_a_conversion_that_does_nothing_differs_from_the_independent_reference(matrix_verdict, row):
    lines = _failures(matrix_verdict, row, nothing_done)
    assert lines[-1].startswith("[numeric] outputs differ"), lines


def test_a_qdq_graph_that_kept_its_recorders_fails_the_quantization_rule(matrix_verdict):
    lines = _failures(matrix_verdict, "qat_qdq", compat.qat_recording)
    assert lines[0] == ("[layers] layer expectations not met: inputs and weights of Convolution/"
                        "Deconvolution/DepthwiseConvolution/DepthwiseDeconvolution/Affine: 6 tensors, "
                        "0 QuantizeLinear/0 DequantizeLinear, 6 read without them, 1 biases off their grid, "
                        "7 recorders left (expected one pair per tensor, every bias on its grid, 0 recorders)"), lines


def test_scales_rounded_to_powers_of_two_differ_from_the_reference(matrix_verdict, monkeypatch):
    plain = compat.qat_config

    def rounded():
        cfg = plain()
        cfg.pow2 = cfg.RoundingMethod.ROUND
        return cfg
    monkeypatch.setattr(compat, "qat_config", rounded)
    assert _failures(matrix_verdict, "qat_qdq", compat.qat_qdq)[0].startswith("[numeric] outputs differ")


@pytest.mark.parametrize("row", ["batch_stat_off", "test_mode"])
def test_a_training_twin_left_in_training_mode_differs_from_the_model(matrix_verdict, row):
    def twin_unconverted(model):
        twin = compat.twin_for(model, dropout=row == "test_mode")
        return Conversion(list(twin.outputs), list(model.inputs))
    lines = _failures(matrix_verdict, row, twin_unconverted)
    assert any(line.startswith("[layers] layer expectations not met: BatchNormalization(batch_stat=True): "
                               "0 -> 3") for line in lines), lines
    if row == "test_mode":  # its Dropouts are left in too
        assert any(line.startswith("[random] the conversion changed the graph's random functions")
                   for line in lines), lines
    assert lines[-1].startswith("[numeric] outputs differ"), lines


def test_copied_parameters_fail_the_identity_modifiers_rule(matrix_verdict):
    class CopyParameters(GraphPass):  # the same values in new variables: only the rule can tell
        def input_map(self, view, b, plan):
            return {v: copy_leaf(v) for v in view.parameters}

    def copied(model):
        return Conversion(run_passes([CopyParameters()], list(model.outputs), model.params).outputs,
                          list(model.inputs))
    assert _failures(matrix_verdict, "identity_modifier", copied) == [
        "[layers] layer expectations not met: parameters read: 16 -> 16, 16 not the original's (expected 0)"]


def test_removing_more_than_listed_fails_the_histogram_rule_and_the_reference(matrix_verdict):
    def too_much(model):
        gc = GC.GraphConverter([GC.RemoveFunctionModifier(["BatchNormalization", "ReLU"])],
                               params=model.params)
        return Conversion(gc.convert(list(model.outputs)), list(model.inputs))
    lines = _failures(matrix_verdict, "remove_function", too_much)
    assert lines[0] == "[layers] layer expectations not met: histogram changed (expected unchanged apart " \
                       "from BatchNormalization): ReLU 3->0", lines
    assert lines[1].startswith("[numeric] outputs differ")


def test_a_pruner_that_keeps_the_pruned_channels_biases_differs_from_the_reference(matrix_verdict):
    def weights_only(model):
        conversion = compat.prune(model)
        for name, v in conversion.parameters.items():
            if name.endswith("/b/pruned"):  # put the original bias back
                v.d = model.params[name[:-len("/pruned")]].d
        return conversion
    lines = _failures(matrix_verdict, "prune", weights_only)
    assert lines == [lines[0]] and lines[0].startswith("[numeric] outputs differ"), lines


def test_a_lower_threshold_differs_from_the_reference(matrix_verdict, monkeypatch):
    monkeypatch.setattr(compat, "PRUNING_THRESHOLD", 1.0)  # the reference keeps 2.0
    lines = _failures(matrix_verdict, "prune", compat.prune)
    assert lines == [lines[0]] and lines[0].startswith("[numeric] outputs differ"), lines


def test_a_reference_that_cannot_be_computed_fails_even_a_peer(matrix_verdict):
    def broken(model):
        raise ValueError("no reference here")
    spec = replace(_judged_as("prune", nothing_done), kind="peer", reference=broken)
    verdict = matrix_verdict("planted", spec_of(residual_block), extra=[spec])
    assert not verdict.peer and verdict.failures == [
        "the reference outputs of planted could not be computed: ValueError: no reference here"]


def test_rows_skip_resnet50_in_the_default_matrix_only():
    defaults = {key: default for _, key, _, default in OPTIONS}

    def cases(models=""):
        session = Session()
        session.configure(lambda key: {"gc_models": models, "gc_converters": "prune,fused_bn"}.get(key)
                          or defaults[key])
        return {c.id for c in session.cases()}
    assert "prune-resnet50-cpu" not in cases() and {"prune-lenet-cpu", "fused_bn-resnet50-cpu"} <= cases()
    assert cases("resnet50") == {"prune-resnet50-cpu", "fused_bn-resnet50-cpu"}
    assert all(s.skips_by_default[0] == "resnet50" for s in COMPAT[2:])
