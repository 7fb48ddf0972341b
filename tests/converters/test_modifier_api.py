"""Seed 000's Modifier API: modifiers built from passes."""
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.bn_fold import FoldBatchNorm, LinearizeBatchNorm


def test_a_modifier_is_built_from_passes(net_of, hist):
    net = net_of(lambda x: F.relu(PF.batch_normalization(PF.convolution(x, 4, (3, 3), name="c"),
                                                         batch_stat=False)), (2, 3, 6, 6))
    gc = GC.GraphConverter([GC.Modifier(passes=[FoldBatchNorm()]), GC.Modifier(LinearizeBatchNorm())],
                           params=net.params)
    y = gc.convert(net.outputs)
    assert hist(y) == {"Convolution": 1, "ReLU": 1}
    assert gc.last_result.counts == {"folded": 1}
    np.testing.assert_allclose(net.forward(y)[0], net.forward()[0], rtol=1e-4, atol=1e-5)
    net.assert_unchanged()


def test_bad_passes_are_refused_at_construction_naming_them():
    with pytest.raises(TypeError, match=r"Modifier: passes\[0\] is a int, not a converters.GraphPass"):
        GC.Modifier(passes=[1])
