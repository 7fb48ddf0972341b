"""The bad-input matrix (docs/bad_inputs.md) for the converters and the model registry: each
bad input gets an error of a stated type whose message names the culprit, and nothing else
changes: the original graph (its functions), its parameter values and the global parameter
scope (checked with gcverify's own ``Snapshot``, and again by the conftest's autouse
fixture), and files on disk. The plugin's rows live in test_bad_inputs_plugin.py.
"""
import warnings

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.layout_emulation import cpu_runnable
from gcverify.core.model import build_privately, seeded_inputs
from gcverify.verify.snapshot import Snapshot
from gcverify.core.registry import UnknownModelError
from gcverify.core.registry import UnknownConverterError
from gcverify.zoo.seeding import randomize_parameters
from gcverify.zoo.nnp import NnpLoadError
from gcverify.api import default_models
from gcverify.testing import python_identity


class Net:
    """A small graph in a private scope, random weights and BN statistics, and a snapshot of
    everything a conversion must leave alone."""

    def __init__(self, build, shape=(4, 3, 8, 8), seed=0):
        self.x = nn.Variable(shape)
        self.y, self.params = build_privately(build, self.x)
        randomize_parameters([self.y], self.params, seed=seed)
        self.data = seeded_inputs([shape], seed)[0]
        self.functions = GC.GraphView(self.y, self.params).functions
        self.snapshot = Snapshot.take([self.y], self.params, [self.x])

    def forward(self, y=None, x=None, data=None):
        """Forward ``y`` (default: the original) feeding ``data`` (default: the net's) to ``x``."""
        y = self.y if y is None else y
        (self.x if x is None else x).d = self.data if data is None else data
        y.forward(clear_no_need_grad=True)
        return y.d.copy()

    def assert_unchanged(self):
        assert GC.GraphView(self.y, self.params).functions == self.functions
        changes = self.snapshot.changes([self.y], self.params)
        assert not changes, changes


def conv_bn_relu_affine(x, batch_stat=False):
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1")
    h = F.relu(PF.batch_normalization(h, batch_stat=batch_stat, name="bn1"))
    return PF.affine(h, 5, name="fc")


def params_free(x):
    return F.sum(F.max_pooling(F.relu(x), (2, 2)), axis=1)


# --- 1. a function a converter cannot handle ---------------------------------------------
def _taps():
    """A graph with a Python function inside (an ``nnabla.function.PythonFunction`` tap)."""
    net = Net(conv_bn_relu_affine)
    return net, F.relu(python_identity(net.y, name="PythonTap"))


@pytest.mark.parametrize("convert", [
    lambda net, y: GC.IdentityConverter(params=net.params).convert(y),
    lambda net, y: GC.BatchNormalizationFoldedConverter(params=net.params).convert(y),
    lambda net, y: GC.GraphConverter([GC.ChannelLastModifier(net.x)], params=net.params).convert(y),
    lambda net, y: GC.LowRankConverter(rank=1, params=net.params).convert(y),
    lambda net, y: GC.FixedPointWeightConverter(params=net.params).convert(y),
    lambda net, y: GC.StatisticsConverter(params=net.params).convert(y),
    lambda net, y: cpu_runnable(y, net.params),
], ids=["identity", "bn_fold", "channel_last", "low_rank", "fixed_point", "statistics", "emulation"])
def test_a_python_function_in_the_graph_is_named_before_anything_is_built(convert):
    net, taps = _taps()
    before = Snapshot.take([taps], net.params, [net.x])
    with pytest.raises(ValueError, match=r"PythonTap #\d+ is not an NNabla function type"):
        convert(net, taps)
    assert not before.changes([taps], net.params)
    net.assert_unchanged()


def test_fused_batch_norm_is_kept_with_its_reason_and_refused_when_strict():
    def fused(x):
        h = PF.convolution(x, 3, (3, 3), pad=(1, 1), name="c")
        return PF.fused_batch_normalization(h, x, batch_stat=False, name="fbn")
    net = Net(fused)
    expected = net.forward()
    for make in (GC.BatchNormalizationFoldedConverter, GC.BatchNormalizationLinearConverter):
        c = make(params=net.params)
        y = c.convert(net.y, [net.x])
        assert [e.function for e in c.last_result.reasons("kept")] == ["FusedBatchNormalization 'fbn/bn'"]
        assert "does not split" in c.last_result.reasons("kept")[0].reason
        np.testing.assert_array_equal(net.forward(y), expected)
        with pytest.raises(ValueError, match=r"strict=True.*FusedBatchNormalization 'fbn/bn'"):
            make(params=net.params, strict=True).convert(net.y, [net.x])
    net.assert_unchanged()


# --- 2. invalid converter arguments --------------------------------------------------------
@pytest.mark.parametrize("make, error, culprit", [
    (lambda: GC.LowRankConverter(rank=True), ValueError, "rank must be an integer >= 1, got True"),
    (lambda: GC.LowRankConverter(rank=float("inf")), ValueError, "rank must be an integer >= 1, got inf"),
    (lambda: GC.LowRankModifier(energy="0.9"), ValueError, r"energy must be in \(0, 1\], got '0.9'"),
    (lambda: GC.LowRankModifier(energy=float("nan")), ValueError, "energy must be in .*nan"),
    (lambda: GC.LowRankConverter(rank=2, functions=None), TypeError, "functions must be .* got None"),
    (lambda: GC.FixedPointWeightConverter(functions=None), TypeError, "functions must be .* got None"),
    (lambda: GC.FixedPointWeightConverter(n="8"), ValueError, r"\bn must be an integer .* got '8'"),
    (lambda: GC.FixedPointActivationModifier(delta=float("inf")), ValueError, "delta must be a finite step"),
    (lambda: GC.StatisticsConverter(channel_axis="C"), ValueError, "channel_axis .* got 'C'"),
    (lambda: GC.GraphConverter("bn_fold"), TypeError, "takes Modifier objects; got 'bn_fold'"),
    (lambda: GC.SequentialConverter([GC.IdentityConverter(), "bn"]), TypeError,
     "takes Converter objects; got 'bn'"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_arguments_are_refused_at_construction_naming_the_argument(make, error, culprit):
    with pytest.raises(error, match=culprit):
        make()


@pytest.mark.parametrize("convert, error, culprit", [
    (lambda net: GC.IdentityConverter(params=net.params).convert(42), TypeError,
     "nnabla.Variable or a list of them, not a int"),
    (lambda net: GC.IdentityConverter(params=net.params).convert(None), TypeError, "not a NoneType"),
    (lambda net: GC.IdentityConverter(params=net.params).convert([net.y, "y"]), TypeError,
     "output 1 is a str"),
    (lambda net: GC.IdentityConverter(params=net.params).convert([]), ValueError, "at least one output"),
    (lambda net: GC.IdentityConverter(params=list(net.params.values())).convert(net.y), TypeError,
     r"params must be a \{name: Variable\} dict, not a list"),
    (lambda net: GC.IdentityConverter(params=net.params).convert(net.y, [net.data]), TypeError,
     r"inputs\[0\] is a ndarray, not an nnabla.Variable"),
    (lambda net: GC.IdentityConverter(params=net.params).convert(net.y, [nn.Variable((4, 3, 8, 8))]),
     ValueError, r"inputs\[0\] \(shape \(4, 3, 8, 8\)\) is not an input of the graph"),
    (lambda net: GC.GraphConverter([GC.ChannelLastModifier([net.params["fc/affine/W"]])],
                                   params=net.params).convert(net.y),
     ValueError, r"inputs\[0\] \(shape \(256, 5\)\) is not an input of the graph \(a parameter\)"),
    (lambda net: GC.GraphConverter([GC.ChannelLastModifier([net.y.parent.inputs[0]])],
                                   params=net.params).convert(net.y),
     ValueError, r"inputs\[0\] .* \(computed by ReLU\)"),
])
def test_bad_arguments_at_conversion_name_the_culprit_and_change_nothing(convert, error, culprit):
    net = Net(conv_bn_relu_affine)
    with pytest.raises(error, match=culprit):
        convert(net)
    net.assert_unchanged()


def test_a_single_variable_or_converter_is_taken_as_a_list_of_one():
    """``list(variable)`` would slice an NNabla Variable into pieces: the facades never do it."""
    net = Net(lambda x: PF.convolution(x, 4, (3, 3), name="c"))
    m = GC.ChannelLastModifier(net.x)  # not [net.x]
    gc = GC.GraphConverter(m, params=net.params)  # not [m]
    y = gc.convert(net.y)
    assert m.inputs_cl[0].shape == (4, 8, 8, 3)
    runnable = cpu_runnable(y, {**net.params, **gc.last_result.new_parameters})[0]
    got = net.forward(runnable, m.inputs_cl[0], np.moveaxis(net.data, 1, -1))
    np.testing.assert_allclose(got, net.forward(), rtol=1e-4, atol=1e-5)
    seq = GC.SequentialConverter(GC.IdentityConverter(), params=net.params)
    np.testing.assert_array_equal(net.forward(seq.convert(net.y, net.x)), net.forward())
    net.assert_unchanged()


# --- 3. BN in training mode where folding needs running statistics ---------------------------
BN_CONVERTERS = [GC.BatchNormalizationFoldedConverter, GC.BatchNormalizationLinearConverter,
                 lambda **kw: GC.BatchNormalizationFoldedConverter(opposite=True, **kw)]


@pytest.mark.parametrize("make", BN_CONVERTERS, ids=["fold", "linear", "fold_opposite"])
def test_training_bn_is_kept_with_a_warning_and_an_event_naming_it(make):
    net = Net(lambda x: conv_bn_relu_affine(x, batch_stat=True))
    c = make(params=net.params)
    with pytest.warns(GC.ConversionWarning, match=r"kept 1 BatchNormalization .*'bn1/bn' "
                                                  r"\(batch_stat=True \(training mode\).*batch_stat=False"):
        y = c.convert(net.y, [net.x])
    [kept] = c.last_result.reasons("kept")
    assert kept.function == "BatchNormalization 'bn1/bn'" and kept.reason.startswith("batch_stat=True")
    assert GC.GraphView(y, {}).histogram()["BatchNormalization"] == 1
    net.assert_unchanged()


@pytest.mark.parametrize("make", BN_CONVERTERS, ids=["fold", "linear", "fold_opposite"])
def test_strict_refuses_a_training_bn_before_anything_is_built(make):
    net = Net(lambda x: conv_bn_relu_affine(x, batch_stat=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # strict raises instead of warning
        with pytest.raises(ValueError, match=r"strict=True\): 1 BatchNormalization function\(s\) "
                                             r"cannot be converted: BatchNormalization 'bn1/bn' "
                                             r"\(batch_stat=True"):
            make(params=net.params, strict=True).convert(net.y, [net.x])
    net.assert_unchanged()


def test_strict_passes_when_every_bn_converts_and_an_invalid_variance_warns():
    net = Net(conv_bn_relu_affine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an inference BN converts silently
        y = GC.BatchNormalizationFoldedConverter(params=net.params, strict=True).convert(net.y, [net.x])
    np.testing.assert_allclose(net.forward(y), net.forward(), rtol=1e-4, atol=1e-4)
    net.params["bn1/bn/var"].d = -1.0  # corrupt running statistics: no finite scale exists
    net.snapshot = Snapshot.take([net.y], net.params, [net.x])
    with pytest.warns(GC.ConversionWarning, match=r"'bn1/bn' \(its running variance \+ eps is not positive"):
        GC.BatchNormalizationLinearConverter(params=net.params).convert(net.y, [net.x])
    net.assert_unchanged()


# --- 4. a graph with no parameters -----------------------------------------------------------
NO_PARAMETER_CONVERSIONS = {
    "bn_fold": lambda x, y: GC.GraphConverter([GC.BatchNormalizationFoldingModifier()], params={}).convert(y),
    "bn_linear": lambda x, y: GC.BatchNormalizationLinearConverter(params={}).convert(y, [x]),
    "fixed_point_weight": lambda x, y: GC.FixedPointWeightConverter(params={}).convert(y, [x]),
    "statistics": lambda x, y: GC.StatisticsConverter(params={}).convert(y, [x]),
    "qdq": lambda x, y: GC.QuantizeDequantizeConverter(params={}).convert(y, [x]),
    "low_rank": lambda x, y: GC.LowRankConverter(rank=1, params={}).convert(y, [x]),
    "identity": lambda x, y: GC.IdentityConverter(params={}).convert(y, [x]),
}


@pytest.mark.parametrize("name", sorted(NO_PARAMETER_CONVERSIONS))
def test_a_graph_without_parameters_converts_to_an_equal_graph(name):
    net = Net(params_free)
    assert net.params == {}
    y = NO_PARAMETER_CONVERSIONS[name](net.x, net.y)
    np.testing.assert_array_equal(net.forward(y), net.forward())
    net.assert_unchanged()


def test_a_graph_without_parameters_goes_channel_last_and_back():
    net = Net(params_free)
    to_last = GC.ChannelLastModifier([net.x])
    y = GC.GraphConverter([to_last], params={}).convert(net.y)
    x_cl, data_cl = to_last.inputs_cl[0], np.moveaxis(net.data, 1, -1)
    np.testing.assert_array_equal(net.forward(cpu_runnable(y, {})[0], x_cl, data_cl), net.forward())
    to_first = GC.ChannelFirstModifier([x_cl])
    back = GC.GraphConverter([to_first], params={}).convert(y)
    np.testing.assert_array_equal(net.forward(back, to_first.inputs_cf[0]), net.forward())
    net.assert_unchanged()


def test_a_graph_without_parameters_gets_quantized_activations_within_half_a_step():
    net = Net(params_free)
    q = GC.FixedPointActivationConverter(n=8, delta=2 ** -4, params={}).convert(net.y, [net.x])
    error = np.abs(net.forward(q) - net.forward())
    # each ReLU output moves by at most delta/2; max pooling keeps that, the sum adds 3 channels
    assert 0 < error.max() <= 3 * 2 ** -5 + 1e-6
    net.assert_unchanged()


def test_a_graph_that_is_only_its_input_stays_in_its_layout():
    """No function at all: the output is the input, and comes back in its own layout."""
    x = nn.Variable((2, 3, 4, 4))
    x.d = np.random.RandomState(0).uniform(-1, 1, x.shape).astype(np.float32)
    m = GC.ChannelLastModifier([x])
    y = GC.GraphConverter([m], params={}).convert(x)
    assert y.shape == x.shape and m.inputs_cl[0].shape == (2, 4, 4, 3)
    m.inputs_cl[0].d = np.moveaxis(x.d, 1, -1)
    y.forward()
    np.testing.assert_array_equal(y.d, x.d)
    for c in (GC.IdentityConverter(params={}), GC.BatchNormalizationFoldedConverter(params={}),
              GC.LowRankConverter(rank=1, params={})):
        assert c.convert(x, [x]) is x


# --- 5. an empty, corrupt or missing .nnp through ModelRegistry --------------------------------
@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"not an nnp at all\n"],
                         ids=["empty", "truncated", "text"])
def test_a_broken_nnp_is_named_when_resolved_and_nothing_is_registered(tmp_path, content):
    path = tmp_path / "broken.nnp"
    path.write_bytes(content)
    with pytest.raises(NnpLoadError, match=r"not a readable \.nnp file \(.*\): {}".format(path)):
        default_models().resolve(str(path))
    assert path.read_bytes() == content


def test_a_missing_nnp_is_an_unknown_model_naming_the_path(tmp_path):
    registry = default_models()
    with pytest.raises(UnknownModelError, match="no .nnp file at '.*nowhere.nnp'"):
        registry.build(str(tmp_path / "nowhere.nnp"))
    with pytest.raises(UnknownModelError, match="unknown model 'lenet5'; known models: lenet, resnet50"):
        registry.build("lenet5")


# --- 6. an unknown converter name through the library API ------------------------------------
def test_unknown_converter_name_in_the_api_lists_the_known_ones():
    from gcverify.api import resolve_converter
    with pytest.raises(UnknownConverterError, match="unknown converter 'bn_fould'; known converters: bn_fold, bn_linear"):
        resolve_converter("bn_fould")
