"""The BN folding algebra, layer by layer, checked against NNabla's own kernels.

No graph conversion here: each test evaluates a layer with NNabla on numpy arrays, applies
inference BN in numpy, and compares with the layer evaluated on the folded weights.
"""
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from converters.bn_math import bn_scale_shift, fold_into_consumer, fold_into_producer


def _run(fn, x, w, b=None, **args):
    """Evaluate one NNabla function on numpy arrays."""
    xv, wv = nn.Variable.from_numpy_array(x), nn.Variable.from_numpy_array(w)
    bv = None if b is None else nn.Variable.from_numpy_array(b)
    y = fn(xv, wv, bv, **args)
    y.forward()
    return y.d.copy()


def _stats(rng, shape):
    return (rng.normal(0, 0.3, shape), rng.uniform(0.5, 2.0, shape),
            rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.3, shape))


def _along(v, ndim, axis):
    s = [1] * ndim
    s[axis] = -1
    return v.reshape(s)


def test_scale_shift_matches_the_bn_formula(rng):
    mean, var, gamma, beta = _stats(rng, (1, 6, 1, 1))
    x = rng.normal(0, 1, (2, 6, 3, 3))
    eps = 1e-3
    expect = gamma * (x - mean) / np.sqrt(var + eps) + beta
    c0, c1 = bn_scale_shift(mean, var, eps, gamma, beta)
    assert c0.dtype == np.float32 and c0.shape == mean.shape
    np.testing.assert_allclose(c0 * x + c1, expect, rtol=1e-5, atol=1e-5)
    c0, c1 = bn_scale_shift(mean, var, eps)  # no_scale and no_bias
    np.testing.assert_allclose(c0 * x + c1, (x - mean) / np.sqrt(var + eps), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="variance"):
        bn_scale_shift(mean, -np.ones_like(var), eps)


# (name, NNabla function, x shape, W shape, bias shape, args, output channel axis)
PRODUCERS = [
    ("conv1d", F.convolution, (2, 4, 9), (6, 4, 3), (6,), {}, 1),
    ("conv2d_groups", F.convolution, (2, 4, 7, 7), (6, 2, 3, 3), (6,), dict(group=2, pad=(1, 1)),
     1),
    ("conv3d", F.convolution, (1, 3, 5, 5, 5), (4, 3, 3, 3, 3), (4,), {}, 1),
    ("deconv", F.deconvolution, (2, 4, 5, 5), (4, 3, 3, 3), (3,), dict(stride=(2, 2)), 1),
    ("deconv_groups", F.deconvolution, (2, 4, 5, 5), (4, 3, 3, 3), (6,), dict(group=2), 1),
    ("deconv1d_groups", F.deconvolution, (2, 6, 5), (6, 2, 3), (6,), dict(group=3), 1),
    ("depthwise", F.depthwise_convolution, (2, 3, 6, 6), (6, 3, 3), (6,), dict(multiplier=2), 1),
    ("depthwise_deconv", F.depthwise_deconvolution, (2, 6, 4, 4), (6, 3, 3), (2,),
     dict(divisor=3), 1),
    ("affine", F.affine, (3, 2, 4), (8, 5), (5,), {}, 1),
    ("affine_square", F.affine, (3, 5), (5, 5), (5,), {}, 1),
    ("affine_base2_out2d", F.affine, (2, 3, 4), (4, 2, 5), (2, 5), dict(base_axis=2), 2),
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("case", PRODUCERS, ids=[c[0] for c in PRODUCERS])
def test_fold_into_producer_equals_layer_then_bn(rng, case, with_bias):
    name, fn, xs, ws, bs, args, axis = case
    kind = {F.convolution: "Convolution", F.deconvolution: "Deconvolution",
            F.depthwise_convolution: "DepthwiseConvolution",
            F.depthwise_deconvolution: "DepthwiseDeconvolution", F.affine: "Affine"}[fn]
    x = rng.normal(0, 1, xs).astype(np.float32)
    w = rng.normal(0, 0.5, ws).astype(np.float32)
    b = rng.normal(0, 0.5, bs).astype(np.float32) if with_bias else None
    y = _run(fn, x, w, b, **args)
    stat_shape = [1] * y.ndim
    stat_shape[axis] = y.shape[axis]
    mean, var, gamma, beta = _stats(rng, stat_shape)
    c0, c1 = bn_scale_shift(mean, var, 1e-5, gamma, beta)
    # Convolutions take a channel vector; Affine takes its trailing output dims.
    base = args.get("base_axis", 1)
    c0l, c1l = (c0.reshape(-1), c1.reshape(-1)) if kind != "Affine" else (
        c0.reshape(c0.shape[base:]), c1.reshape(c1.shape[base:]))
    w_before = w.copy()
    w2, b2 = fold_into_producer(kind, w, b, c0l, c1l, args)
    np.testing.assert_array_equal(w, w_before)  # the input weight is never written
    assert w2.shape == w.shape and w2.dtype == np.float32
    np.testing.assert_allclose(_run(fn, x, w2, b2, **args), c0 * y + c1, rtol=1e-4, atol=1e-4)


def test_out_buffer_receives_the_weight_and_aliasing_is_refused(rng):
    w = rng.normal(0, 1, (4, 3, 3, 3)).astype(np.float32)
    c0, c1 = bn_scale_shift(*_stats(rng, (4,))[:2], 1e-5)
    out = np.empty_like(w)
    w2, _ = fold_into_producer("Deconvolution", w, None, c0.repeat(1)[:3], c1[:3],
                               dict(group=1), out=out)
    assert np.shares_memory(w2, out)
    np.testing.assert_allclose(out, w * c0[:3].reshape(1, 3, 1, 1))
    with pytest.raises(ValueError, match="separate"):
        fold_into_producer("Convolution", w, None, c0, c1, out=w)
    with pytest.raises(ValueError, match="Pooling"):
        fold_into_producer("MaxPooling", w, None, c0, c1)


@pytest.mark.parametrize("kind,ws,args,out_axis", [
    ("Convolution", (6, 2, 3, 3), dict(group=2), 0),
    ("Deconvolution", (4, 3, 3, 3), dict(group=2), 1),
])
def test_channel_last_weight_layouts_fold_like_channel_first(rng, kind, ws, args, out_axis):
    w = rng.normal(0, 1, ws).astype(np.float32)
    channels = ws[0] if kind == "Convolution" else ws[1] * args["group"]
    c0, c1 = bn_scale_shift(*_stats(rng, (channels,))[:2], 1e-5)
    w_cf, b_cf = fold_into_producer(kind, w, None, c0, c1, args)
    # Channel-last moves the per-group in (conv) / out (deconv) axis 1 to the end.
    w_cl, b_cl = fold_into_producer(kind, np.moveaxis(w, 1, -1), None, c0, c1,
                                    dict(args, channel_last=True))
    np.testing.assert_array_equal(np.moveaxis(w_cl, -1, 1), w_cf)
    np.testing.assert_array_equal(b_cl, b_cf)


CONSUMERS = [
    ("conv", F.convolution, (2, 4, 7, 7), (5, 4, 3, 3), dict(stride=(2, 2), dilation=(1, 2))),
    ("conv_groups", F.convolution, (2, 4, 6, 6), (6, 2, 3, 3), dict(group=2)),
    ("conv1d", F.convolution, (2, 3, 9), (4, 3, 3), {}),
    ("depthwise", F.depthwise_convolution, (2, 3, 6, 6), (6, 3, 3), dict(multiplier=2)),
    ("affine", F.affine, (2, 3, 2, 2), (12, 5), {}),
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("case", CONSUMERS, ids=[c[0] for c in CONSUMERS])
def test_fold_into_consumer_equals_bn_then_layer(rng, case, with_bias):
    name, fn, xs, ws, args = case
    kind = {F.convolution: "Convolution", F.depthwise_convolution: "DepthwiseConvolution",
            F.affine: "Affine"}[fn]
    x = rng.normal(0, 1, xs).astype(np.float32)
    w = rng.normal(0, 0.5, ws).astype(np.float32)
    n_out = ws[0] if kind != "Affine" else ws[-1]
    b = rng.normal(0, 0.5, (n_out,)).astype(np.float32) if with_bias else None
    mean, var, gamma, beta = _stats(rng, (xs[1],))
    c0, c1 = bn_scale_shift(mean, var, 1e-5, gamma, beta)
    expect = _run(fn, (_along(c0, x.ndim, 1) * x + _along(c1, x.ndim, 1)).astype(np.float32),
                  w, b, **args)
    if kind == "Affine":  # the flattened input: c0/c1 over all of x's trailing dims
        c0 = np.broadcast_to(_along(c0, x.ndim - 1, 0), xs[1:])
        c1 = np.broadcast_to(_along(c1, x.ndim - 1, 0), xs[1:])
    w2, b2 = fold_into_consumer(kind, w, b, c0, c1, args)
    np.testing.assert_allclose(_run(fn, x, w2, b2, **args), expect, rtol=1e-4, atol=1e-4)


def test_padding_breaks_the_shift_but_not_the_scale(rng):
    """Why the pass refuses opposite folding through zero padding unless c1 == 0."""
    x = rng.normal(0, 1, (1, 3, 6, 6)).astype(np.float32)
    w = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    mean, var, gamma, beta = _stats(rng, (3,))
    for shifted in (True, False):
        c0, c1 = bn_scale_shift(mean if shifted else 0 * mean, var, 1e-5, gamma,
                                beta if shifted else None)
        bn_x = (_along(c0, 4, 1) * x + _along(c1, 4, 1)).astype(np.float32)
        expect = _run(F.convolution, bn_x, w, None, pad=(1, 1))
        w2, b2 = fold_into_consumer("Convolution", w, None, c0, c1)
        got = _run(F.convolution, x, w2, b2, pad=(1, 1))
        interior = np.s_[..., 1:-1, 1:-1]
        np.testing.assert_allclose(got[interior], expect[interior], rtol=1e-4, atol=1e-4)
        assert np.allclose(got, expect, rtol=1e-4, atol=1e-4) == (not shifted)
