"""``import converters as GC`` as a drop-in for NNabla 1.39's graph converters: every public
name, with NNabla's constructor arguments and defaults (ours may add keywords after them)."""
import inspect

import nnabla.experimental.graph_converters as NGC
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC


def nnabla_names():
    """The names NNabla's package imports in its __init__ (19 in 1.39)."""
    return sorted(n for n, v in vars(NGC).items() if isinstance(v, type) and not n.startswith("_"))


def constructor(cls):
    init = cls.__dict__.get("__new__") or cls.__init__  # NNabla builds two of them in __new__
    return [p for p in inspect.signature(init).parameters.values() if p.name != "self"]


def same_default(a, b):
    empty = (None, (), [], {})
    if any(a is e or (type(a) is type(e) and a == e) for e in empty):
        return any(b is e or (type(b) is type(e) and b == e) for e in empty)  # {} / [] vs None / ()
    return a == b


def test_nnabla_exports_the_19_names_we_know():
    assert len(nnabla_names()) == 19


@pytest.mark.parametrize("name", nnabla_names())
def test_every_nnabla_name_exists_with_its_arguments_and_defaults(name):
    ours, theirs = constructor(getattr(GC, name)), constructor(getattr(NGC, name))
    assert [p.name for p in ours[:len(theirs)]] == [p.name for p in theirs]
    for a, b in zip(ours, theirs):
        assert a.kind == b.kind and (a.default is inspect.Parameter.empty) == (b.default is inspect.Parameter.empty)
        if b.default is not inspect.Parameter.empty:
            assert same_default(b.default, a.default), (name, a.name, a.default, b.default)
    for extra in ours[len(theirs):]:
        assert extra.default is not inspect.Parameter.empty, "{}: {} needs a default".format(name, extra.name)
    assert name in GC.__all__


def test_the_folding_inner_modifiers_fold_in_their_direction(net_of, hist):
    def build(x):
        h = PF.batch_normalization(PF.convolution(x, 4, (3, 3), name="c1"), batch_stat=False, name="b1")
        h = PF.batch_normalization(F.relu(h), batch_stat=False, name="b2")
        return F.relu(PF.convolution(h, 3, (1, 1), name="c2"))
    net = net_of(build, (2, 3, 6, 6))
    for modifier, kept in ((GC.BatchNormalizationFoldingModifierInner(), "b2"),
                           (GC.BatchNormalizationFoldingOppositeModifierInner(), "b1")):
        gc = GC.GraphConverter([modifier], params=net.params)
        y = gc.convert(net.outputs)
        assert hist(y)["BatchNormalization"] == 1 and gc.last_result.counts["folded"] == 1
        assert [e.function for e in gc.last_result.reasons("kept")][0].startswith("BatchNormalization '{}".format(kept))
        np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-4, atol=1e-5)
    net.assert_unchanged()


def test_an_opposite_fold_across_a_fork_is_refused_where_nnablas_is_wrong(net_of, hist, nnabla_peer):
    """NNabla's suite expects BN -> (conv, Add2) folded into the conv (its reference graph has
    no BN), which drops the BN for the Add2 too; with random statistics that is wrong."""
    def residual(x):
        h = PF.batch_normalization(x, batch_stat=False, name="bn")
        return F.relu(h + PF.convolution(h, 3, (3, 3), pad=(1, 1), name="conv"))
    net = net_of(residual, (2, 3, 6, 6))
    gc = GC.GraphConverter([GC.BatchNormalizationFoldingModifier(opposite=True)], params=net.params)
    ours = gc.convert(net.outputs)
    assert hist(ours) == hist(net.outputs)
    assert [e.reason for e in gc.last_result.reasons("kept")] == [
        "its output is read by Convolution 'conv/conv', Add2 #2: it cannot vanish into one of them"]
    np.testing.assert_allclose(net.forward(ours)[0], net.forward()[0], rtol=1e-5, atol=1e-5)
    theirs = nnabla_peer(net, lambda NGC: [NGC.BatchNormalizationFoldingModifier(opposite=True)])[0]
    assert np.abs(theirs - net.forward()[0]).max() > 0.1
    net.assert_unchanged()


def test_the_new_modifiers_chain_on_a_graph_with_two_inputs_and_two_outputs(net_of, hist):
    def build(x, z):
        h = F.relu(PF.batch_normalization(PF.convolution(x, 3, (3, 3), pad=(1, 1), with_bias=False, name="c"),
                                          batch_stat=True, name="bn") + z)
        return PF.affine(h, 4, name="fa"), F.relu(PF.convolution(z, 2, (1, 1), name="cz")) * 0.5
    net = net_of(build, (2, 3, 5, 5), (2, 3, 5, 5))
    modifiers = [GC.IdentityModifier(), GC.TestModeModifier(["MulScalar"]), GC.AddBiasModifier(),
                 GC.FusedBatchNormalizationModifier(), GC.PruningModifier(0.0), GC.NoGradModifier()]
    gc = GC.GraphConverter(modifiers, params=net.params)
    y = gc.convert(net.outputs)
    assert len(y) == 2 and hist(y) == {"Convolution": 2, "FusedBatchNormalization": 1, "Affine": 1, "ReLU": 1}
    assert gc.last_result.counts == {"test_mode": 1, "removed": 1, "bias_added": 1, "fused": 1,
                                     "kept": 3, "no_grad": 4}
    inference = GC.GraphConverter([GC.BatchNormBatchStatModifier()], params=net.params).convert(net.outputs)
    expected = net.forward(inference)
    got = net.forward(y)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], expected[1] * 2, rtol=1e-5, atol=1e-6)  # MulScalar removed
    net.assert_unchanged()
