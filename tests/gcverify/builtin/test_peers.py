"""gcverify flags every known bug of NNabla 1.39's built-in converters, and ours pass.

Each test builds the smallest graph showing one bug (seeded weights, random BN statistics),
runs NNabla's converter as the matrix does (in a throwaway parameter scope) and asserts what
gcverify reports; then runs our converter on the same graph through the same checks. The
verdicts come from :func:`gcverify.plugin.worker.verify_case`, so each is exactly the matrix row
(``--gc-models=<graph> --gc-converters=<converter>``). docs/nnabla_bugs.md is the table.
"""
from collections import OrderedDict

import nnabla as nn
import nnabla.experimental.graph_converters as NGC
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.graph_view import GraphView
from gcverify.api import assert_equivalent, convert, count_functions
from gcverify.core.model import ModelSpec
from gcverify.core.conversion import Conversion
from gcverify.core.registry import ConverterSpec
from converters.graph_view import all_parameters
from gcverify.builtin.peers import run_nnabla
from gcverify.core.model import scope_holding
from gcverify.testing import zoo_model
from gcverify.plugin.options import OPTIONS
from gcverify.plugin.session import Case, Session
from gcverify.plugin.worker import verify_case
from gcverify.zoo import randomize_parameters

IMAGE = (2, 3, 8, 8)  # 6 maps on 8x8 maps: channel-first and channel-last shapes differ
_DEFAULTS = {key: default for _, key, _, default in OPTIONS}


# --- minimal graphs ------------------------------------------------------------------------
def _bn(h, name, batch_stat=False):
    return PF.batch_normalization(h, batch_stat=batch_stat, name=name)


def _conv(h, name, maps=6, pad=1, with_bias=False):
    return PF.convolution(h, maps, (3, 3), pad=(pad, pad), with_bias=with_bias, name=name)


def fork_bn_first(x):
    h = _conv(F.relu(x), "c")
    return F.add2(_bn(h, "bn"), F.relu(h))  # the BN is created first: h's first reader


def fork_relu_first(x):
    h = _conv(F.relu(x), "c")
    relu = F.relu(h)
    return F.add2(_bn(h, "bn"), relu)


def shared_weight(x):
    a = _bn(_conv(x, "shared"), "bn-a")
    b = _bn(_conv(F.sigmoid(x), "shared"), "bn-b")  # same scope: same weight shared/conv/W
    return F.add2(a, b)


def affine_bn(x):
    return _bn(PF.affine(x, 4, name="fc"), "bn")


def training_bn(x):
    return F.relu(_bn(_conv(F.relu(x), "c"), "bn", batch_stat=True))


def bn_then_conv(pad):
    def graph(x):  # the ReLU after the conv: NNabla leaves a graph output's producer alone
        return F.relu(_conv(_bn(F.relu(x), "bn"), "post", maps=4, pad=pad))
    graph.__name__ = "bn_then_conv_pad{}".format(pad)
    return graph


def conv_bn(x):
    return F.relu(_bn(_conv(x, "c"), "bn"))  # the input's first reader is a convolution


def deconv_bn(x, with_bias=True):
    return _bn(PF.deconvolution(F.relu(x), 4, (2, 2), stride=(2, 2), with_bias=with_bias,
                                name="up"), "bn")


def deconv_bn_no_bias(x):
    return deconv_bn(x, with_bias=False)


def relu_conv_bn_pool(x):
    return F.max_pooling(F.relu(_bn(_conv(F.relu(x), "c"), "bn")), (2, 2))


def two_bns(x):
    h = F.relu(_bn(_conv(x, "c1"), "bn1"))
    return F.relu(_bn(_conv(h, "c2", maps=4), "bn2"))


def _unit_scale(params):
    """gamma = sqrt(var + eps): each BN's scale c0 is 1, only its shift c1 remains."""
    for name, v in params.items():
        if name.endswith("/gamma"):
            v.d = np.sqrt(params[name[:-len("gamma")] + "var"].d + 1e-5)


def _spec(graph, shape=IMAGE, adjust=None):
    def build(seed=0):
        x = nn.Variable(shape)
        y = graph(x)
        params = nn.get_parameters(grad_only=False)  # the builder's private scope
        randomize_parameters([y], params, seed)
        if adjust is not None:
            adjust(params)
        return [x], [y]
    return ModelSpec(graph.__name__ + ("_unit_scale" if adjust else ""), build)


# --- NNabla converters the matrix does not register as peers -------------------------------
def nnabla_channel_roundtrip_given_inputs(model):
    """ChannelLast then ChannelFirst with inputs passed in (handing ChannelFirst the
    ChannelLast's ``inputs_cl`` crashes, see test_channel_roundtrip): the inputs at least stay connected."""
    x = model.inputs[0]
    x_cl = nn.Variable((x.shape[0],) + x.shape[2:] + x.shape[1:2])
    x_cf = nn.Variable(x.shape)

    def make(NGC, done):  # ChannelFirst looks up x_cl's readers: made once ChannelLast ran
        if not done:
            return [NGC.ChannelLastModifier([x], [x_cl])]
        return [NGC.ChannelFirstModifier([x_cl], [x_cf])]
    return Conversion(run_nnabla(model.outputs, model.params, make, steps=2)[0], [x_cf])


# (nnabla_bn_fold_opposite is a built-in peer of the matrix)
PEERS = [ConverterSpec(fn.__name__, fn, "peer") for fn in (nnabla_channel_roundtrip_given_inputs,)]


# --- the matrix row of one case ------------------------------------------------------------
def _verdict(converter, spec):
    session = Session()
    session.models.add(spec)
    for peer in PEERS:
        session.converters.add(peer)
    settings = {"gc_models": spec.name, "gc_converters": converter, "gc_speed_repeats": "1"}
    session.configure(lambda key: settings.get(key) or _DEFAULTS[key])
    return verify_case(session, Case(converter, spec.name, spec.name, "cpu"))


def _flagged(verdict):
    """The first line of each failed check: '[numeric] outputs differ: ...', ..."""
    assert verdict.failures, "gcverify passed {}: {}".format(verdict.row.id, verdict.row)
    return [f.splitlines()[0] for f in verdict.failures]


def _numbers_wrong(verdict):
    lines = _flagged(verdict)
    assert any(line.startswith("[numeric] outputs differ") for line in lines), lines
    return lines


def _crashed(verdict, error):
    lines = _flagged(verdict)
    assert lines[0].startswith("NNabla's converter raised " + error), lines
    return lines[0]


def _kept_with_reason(verdict, reason):
    """Our BN converters keep a BN they cannot remove exactly, with a reason the verifier's
    own rule finds valid too: the row passes and says what was kept and why."""
    assert verdict.failures == [], verdict.message()
    assert any(line.startswith("kept BatchNormalization 'bn/bn': " + reason) and "(valid: " in line
               for line in verdict.row.kept), verdict.row.kept


def _hidden_input(verdict):
    lines = _flagged(verdict)
    assert any(line.startswith("[inputs] the converted graph reads 1 leaf variable(s) that are "
                               "neither inputs it exposes") for line in lines), lines
    return lines


def _passes(converter, spec):
    verdict = _verdict(converter, spec)
    assert verdict.failures == [], verdict.message()
    return verdict


# --- (1) a convolution whose output forks before its BN ------------------------------------
@pytest.mark.parametrize("graph", [fork_bn_first, fork_relu_first])
def test_fork_before_bn(graph):
    nnabla = _verdict("nnabla_bn_fold", _spec(graph))
    lines = _numbers_wrong(nnabla)
    # it dropped the BN, so a layer count alone would call this a success
    assert nnabla.row.removed == {"BatchNormalization": 1}
    assert not any(line.startswith("[layers]") for line in lines)
    _passes("bn_linear", _spec(graph))
    _kept_with_reason(_verdict("bn_fold", _spec(graph)),
                      "the output of Convolution 'c/conv' is also read by")


# --- (2) two convolutions sharing one weight, each with its own BN --------------------------
def test_shared_weight_with_two_bns():
    spec = _spec(shared_weight)
    _numbers_wrong(_verdict("nnabla_bn_fold", spec))
    # why: the second conv got the first one's folded weight, found by name ('w-folded')
    convs = [f for f in GraphView(convert("nnabla_bn_fold", spec.build()).outputs).functions
             if f.info.type_name == "Convolution"]
    assert len(convs) == 2 and convs[0].inputs[1] == convs[1].inputs[1]
    _passes("bn_fold", spec)
    _passes("bn_linear", spec)


# --- (3) Affine -> BN ------------------------------------------------------------------------
def test_affine_bn_square_is_silently_wrong():
    spec = _spec(affine_bn, shape=(5, 4))  # 4 inputs -> 4 outputs
    _numbers_wrong(_verdict("nnabla_bn_fold", spec))
    _passes("bn_fold", spec)


def test_affine_bn_with_more_inputs_than_outputs_crashes():
    spec = _spec(affine_bn, shape=(5, 6))  # 6 inputs -> 4 outputs
    assert "could not be broadcast" in _crashed(_verdict("nnabla_bn_fold", spec), "ValueError")
    _passes("bn_fold", spec)


# --- (4) BN with batch_stat=True -------------------------------------------------------------
@pytest.mark.parametrize("peer", ["nnabla_bn_fold", "nnabla_bn_self_fold"])
def test_training_bn_is_folded_with_running_statistics(peer):
    nnabla = _verdict(peer, _spec(training_bn))
    _numbers_wrong(nnabla)
    assert nnabla.row.removed == {"BatchNormalization": 1}


@pytest.mark.parametrize("ours", ["bn_fold", "bn_linear"])
def test_training_bn_is_kept_by_ours_with_the_reason(ours):
    with pytest.warns(GC.ConversionWarning, match="batch_stat=True"):
        verdict = _verdict(ours, _spec(training_bn))
    _kept_with_reason(verdict, "batch_stat=True (training mode)")


# --- (5) folding BN into the next convolution (opposite=True) ------------------------------
def test_opposite_fold_gets_the_bias_wrong_and_overwrites_the_original_weight():
    spec = _spec(bn_then_conv(0))
    lines = _numbers_wrong(_verdict("nnabla_bn_fold_opposite", spec))
    assert any(line.startswith("[untouched] the conversion changed its input: parameter "
                               "'post/conv/W' changed values") for line in lines), lines
    ours = _passes("bn_fold_opposite", spec)
    assert ours.row.removed == {"BatchNormalization": 1}  # exact here: ours folds it


def test_opposite_fold_breaks_with_padding():
    # with c0 = 1 NNabla's bias formula happens to be right: without padding its fold passes
    unpadded = _verdict("nnabla_bn_fold_opposite", _spec(bn_then_conv(0), adjust=_unit_scale))
    assert not any(line.startswith("[numeric]") for line in unpadded.failures), unpadded.failures
    padded = _spec(bn_then_conv(1), adjust=_unit_scale)
    _numbers_wrong(_verdict("nnabla_bn_fold_opposite", padded))
    ours = _passes("bn_fold_opposite", padded)  # keeps the BN: the shift would miss the border
    assert ours.row.removed == {}


# --- (6) converting again after the weights changed -----------------------------------------
def test_reconverting_after_training_reuses_stale_folded_weights():
    model = _spec(conv_bn).build()
    scope = OrderedDict()  # the user's parameter scope, alive across both conversions
    with nn.parameter_scope("", scope):
        for name, v in model.params.items():
            nn.parameter.set_parameter(name, v)

    def nnabla_fold():
        with nn.parameter_scope("", scope):
            return NGC.GraphConverter([NGC.BatchNormalizationFoldingModifier()]).convert(
                list(model.outputs))

    assert_equivalent(model, nnabla_fold())
    assert_equivalent(model, convert("bn_fold", model))
    randomize_parameters(model.outputs, model.params, seed=1)  # training moved every value
    with pytest.raises(AssertionError, match=r"\[numeric\] outputs differ"):
        assert_equivalent(model, nnabla_fold())
    assert_equivalent(model, convert("bn_fold", model))


# --- (7)-(9) ChannelLast ----------------------------------------------------------------------
def test_channel_last_crashes_when_the_first_function_is_a_convolution():
    _crashed(_verdict("nnabla_channel_last", _spec(conv_bn)), "IndexError")
    # a ReLU first: no crash (but the graph does not read its inputs_cl: test further down)
    _hidden_input(_verdict("nnabla_channel_last", _spec(relu_conv_bn_pool)))
    _passes("channel_last", _spec(conv_bn))


def test_channel_last_rebuilds_deconvolution_as_convolution():
    # F.convolution called with Deconvolution's arguments: 1.39 stops at output_padding
    line = _crashed(_verdict("nnabla_channel_last", _spec(deconv_bn)), "TypeError")
    assert "convolution() got an unexpected keyword argument 'output_padding'" in line
    ours = _passes("channel_last", _spec(deconv_bn))
    assert ours.row.histogram_after["Deconvolution"] == 1


def test_channel_roundtrip():
    spec = _spec(relu_conv_bn_pool)  # ChannelLast alone is right on it (test above)
    # ChannelFirstModifier(channel_last.inputs_cl), as the matrix peer does: those inputs are
    # fresh variables ChannelLast made after converting, read by no function
    assert "channel_first.py" in _crashed(_verdict("nnabla_channel_roundtrip", spec), "IndexError")
    # with the inputs passed in, it runs, and ChannelFirst finds ChannelLast's 'W_cl' by name:
    # the channel-first convolution computes with the channel-last weight
    _numbers_wrong(_verdict("nnabla_channel_roundtrip_given_inputs", spec))
    model = spec.build()
    weight = model.params["c/conv/W"].d.transpose(0, 2, 3, 1)
    outputs = convert(nnabla_channel_roundtrip_given_inputs, model).outputs
    conv = next(f for f in GraphView(outputs).functions if f.info.type_name == "Convolution")
    assert not conv.info.args["channel_last"] and np.array_equal(conv.inputs[1].d, weight)
    _passes("channel_roundtrip", spec)


def test_channel_last_inputs_cl_are_not_the_graph_inputs():
    """Not in the lead's list: after converting, ``ChannelLastModifier.inputs_cl`` are new
    variables; the graph reads a copy of the data the original inputs held at construction.
    Same data passes by luck, other data shows it; the matrix's wiring check names it."""
    model = _spec(relu_conv_bn_pool).build()
    model.feed()
    outputs, modifiers, _ = run_nnabla(model.outputs, model.params,
                                       lambda NGC, _: [NGC.ChannelLastModifier(list(model.inputs))])
    modifier = modifiers[0][0]
    assert modifier.inputs_cl[0] not in GraphView(outputs).inputs
    nnabla = Conversion(outputs, list(modifier.inputs_cl))
    assert_equivalent(model, nnabla)  # the data it copied is the data fed: passes by luck
    model.input_data = [np.random.RandomState(1).normal(0, 1, IMAGE).astype(np.float32)]
    with pytest.raises(AssertionError, match=r"\[numeric\] outputs differ"):
        assert_equivalent(model, nnabla)
    assert_equivalent(model, convert("channel_last", model))
    _hidden_input(_verdict("nnabla_channel_last", _spec(relu_conv_bn_pool)))
    _passes("channel_last", _spec(relu_conv_bn_pool))


# --- (10) BN self-folding: two broadcast ops per BN ----------------------------------------
def test_self_fold_emits_two_ops_per_bn_where_ours_emits_one():
    spec = _spec(two_bns)
    nnabla, ours = _verdict("nnabla_bn_self_fold", spec), _verdict("bn_linear", spec)
    for verdict, per_bn in ((nnabla, 2), (ours, 1)):
        assert not [f for f in verdict.failures if not f.startswith("[speed]")], verdict.message()
        assert verdict.row.removed == {"BatchNormalization": 2}
        assert sum(verdict.row.added.values()) == 2 * per_bn, verdict.row.added
    model = spec.build()
    assert count_functions(convert("nnabla_bn_self_fold", model), "Mul2") == 2
    assert count_functions(convert("nnabla_bn_self_fold", model), "Add2") == 2


# --- found on the way: a Deconvolution without bias ---------------------------------------
def test_fold_of_deconvolution_without_bias_crashes():
    """NNabla's AddBiasModifier sizes the bias it adds by the deconvolution's input channels."""
    line = _crashed(_verdict("nnabla_bn_fold", _spec(deconv_bn_no_bias)), "RuntimeError")
    _passes("bn_fold", _spec(deconv_bn_no_bias))
    assert "value error" in line


def test_the_scope_holding_a_models_params_keeps_them_flat_and_never_reaches_the_global_scope():
    model = zoo_model("lenet")
    names = list(model.params)
    before = all_parameters()
    with scope_holding(model.params):
        seen = nn.get_parameters(grad_only=False)
    assert list(seen) == names and all(seen[k] is model.params[k] for k in names)
    assert list(model.params) == names  # no sub-scope dictionaries written into it
    assert all_parameters().keys() == before.keys()
