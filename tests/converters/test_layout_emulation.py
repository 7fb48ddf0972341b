"""The CPU emulation of channel-last functions, checked against channel-first NNabla kernels.

Channel-last graphs here are written by hand (weights moved with ``np.moveaxis`` in the test),
not by the converter, so the emulation is checked on its own.
"""
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from converters.graph_view import GraphView
from converters.layout_emulation import cpu_runnable


def var(rng, *shape):
    return nn.Variable.from_numpy_array(rng.randn(*shape).astype(np.float32))


def cl(v):
    return nn.Variable.from_numpy_array(np.moveaxis(v.d, 1, -1).copy())


def run(y):
    y.forward()
    return y.d.copy()


CASES = {  # name: (x shape, w shape, build(x, w, channel_last))
    "conv2d": ((2, 4, 7, 6), (5, 4, 3, 3),
               lambda x, w, c: F.convolution(x, w, pad=(1, 1), stride=(2, 1), channel_last=c)),
    "conv3d": ((1, 2, 4, 5, 6), (3, 2, 3, 3, 3),
               lambda x, w, c: F.convolution(x, w, pad=(1, 0, 1), channel_last=c)),
    "conv1d_grouped": ((2, 4, 12), (6, 2, 3),
                       lambda x, w, c: F.convolution(x, w, group=2, dilation=(2,), channel_last=c)),
    "deconv_grouped": ((2, 4, 5, 6), (4, 3, 3, 3),
                       lambda x, w, c: F.deconvolution(x, w, stride=(2, 2), group=2,
                                                       output_padding=(1, 1), channel_last=c)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_emulated_convolutions_match_channel_first(rng, name):
    xs, ws, make = CASES[name]
    x, w = var(rng, *xs), var(rng, *ws)
    expected = run(make(x, w, False))
    y_cl = make(cl(x), cl(w), True)  # NNabla's channel-last weight: (O, K..., I/g)
    with pytest.raises(RuntimeError):  # the reason this module exists
        y_cl.forward()
    got = run(cpu_runnable([y_cl])[0])
    np.testing.assert_allclose(got, np.moveaxis(expected, 1, -1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape,make", [
    ((2, 3, 6, 8), lambda x, c: F.max_pooling(x, (2, 2), (2, 1), pad=(1, 0), channel_last=c)),
    ((2, 3, 6, 8), lambda x, c: F.average_pooling(x, (3, 2), including_pad=False, pad=(1, 1),
                                                  channel_last=c)),
    ((2, 3, 6, 8), lambda x, c: F.sum_pooling(x, (2, 2), channel_last=c)),
    ((2, 3, 6, 8), lambda x, c: F.unpooling(x, (2, 3), channel_last=c)),
    ((2, 3, 6, 8), lambda x, c: F.interpolate(x, output_size=(9, 11), mode="linear", channel_last=c)),
    ((2, 3, 4, 6, 8), lambda x, c: F.max_pooling(x, (2, 2, 3), channel_last=c)),
    ((2, 3, 4, 6, 8), lambda x, c: F.average_pooling(x, (2, 3), channel_last=c)),  # axis 2 batch-like
])
def test_emulated_pooling_matches_channel_first(rng, shape, make):
    x = var(rng, *shape)
    expected = run(make(x, False))
    got = run(cpu_runnable([make(cl(x), True)])[0])
    np.testing.assert_allclose(got, np.moveaxis(expected, 1, -1), atol=1e-5, rtol=1e-5)


def test_nothing_to_emulate_gives_a_rebuilt_equivalent_graph(rng):
    x = var(rng, 2, 3, 6, 6)
    y = F.relu(F.convolution(x, var(rng, 4, 3, 3, 3)))
    outs = cpu_runnable([y])
    assert isinstance(outs, list) and outs[0] is not y
    assert not set(GraphView(outs, {}).functions) & set(GraphView([y], {}).functions)
    assert np.array_equal(run(outs[0]), run(y))


def test_unemulatable_channel_last_function_is_named(rng):
    x = var(rng, 1, 4, 4, 2)
    boxes = nn.Variable.from_numpy_array(np.array([[0, 0, 0, 2, 2]], np.float32))
    y = F.roi_align(x, boxes, (2, 2), (1.0, 1.0), channel_last=True)
    with pytest.raises(NotImplementedError, match="RoiAlign"):
        cpu_runnable([y])
