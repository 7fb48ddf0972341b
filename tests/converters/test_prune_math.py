"""Pruning math without graphs: per-output-channel norms against loops written from NNabla's
documented weight layouts, and masks that zero exactly those channels."""
import numpy as np
import pytest

from converters import prune_math


def loop_norms(kind, w, args):
    """Sum of squares per output channel, one channel at a time (in float64, as the pruner)."""
    w = np.asarray(w, np.float64)
    if kind in ("Convolution", "DepthwiseConvolution"):
        return np.array([np.sum(w[o] ** 2) for o in range(w.shape[0])])
    if kind == "Deconvolution":
        g, cl = args.get("group", 1), args.get("channel_last", False)
        per_in, per_out = w.shape[0] // g, w.shape[-1] if cl else w.shape[1]
        norms = []
        for group in range(g):
            rows = w[group * per_in:(group + 1) * per_in]
            for j in range(per_out):
                norms.append(np.sum((rows[..., j] if cl else rows[:, j]) ** 2))
        return np.array(norms)
    if kind == "DepthwiseDeconvolution":
        d = args.get("divisor", 1)
        return np.array([np.sum(w[o * d:(o + 1) * d] ** 2) for o in range(w.shape[0] // d)])
    return np.array([np.sum(w[:, o] ** 2) for o in range(w.shape[1])])  # Affine (I, O)


CASES = {
    "conv": ("Convolution", (6, 2, 3, 3), {}),
    "conv_channel_last": ("Convolution", (6, 3, 3, 2), {"channel_last": True}),
    "depthwise_multiplier": ("DepthwiseConvolution", (6, 3, 3), {"multiplier": 2}),
    "deconv": ("Deconvolution", (4, 3, 3, 3), {}),
    "deconv_groups": ("Deconvolution", (4, 3, 3, 3), {"group": 2}),
    "deconv_groups_channel_last": ("Deconvolution", (4, 3, 3, 3), {"group": 2, "channel_last": True}),
    "depthwise_deconv_divisor": ("DepthwiseDeconvolution", (6, 3, 3), {"divisor": 3}),
    "affine": ("Affine", (12, 5), {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_norms_follow_each_layout(name):
    kind, shape, args = CASES[name]
    w = np.random.RandomState(0).normal(0, 1, shape).astype(np.float32)
    np.testing.assert_allclose(prune_math.output_channel_sq_norms(kind, w, args),
                               loop_norms(kind, w, args), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pruned_zeroes_exactly_the_channels_at_or_below_the_threshold(name):
    kind, shape, args = CASES[name]
    w = np.random.RandomState(1).normal(0, 1, shape).astype(np.float32)
    norms = loop_norms(kind, w, args)
    threshold = float(np.sort(norms)[len(norms) // 2])  # half the channels go, the median included
    mask = prune_math.prune_mask(kind, w, threshold, args)
    np.testing.assert_array_equal(mask, (norms > threshold).astype(np.float32))
    bias = np.arange(1, len(norms) + 1, dtype=np.float32)
    w2, b2 = prune_math.pruned(kind, w, bias, mask, args)
    np.testing.assert_array_equal(b2, bias * mask)
    after = loop_norms(kind, w2, args)
    np.testing.assert_array_equal(after == 0, mask == 0)
    np.testing.assert_allclose(after[mask == 1], norms[mask == 1], rtol=1e-6)
    assert prune_math.pruned(kind, w, None, mask, args)[1] is None


def test_affine_with_a_multi_dimensional_output():
    w = np.random.RandomState(2).normal(0, 1, (8, 2, 3)).astype(np.float32)
    norms = prune_math.output_channel_sq_norms("Affine", w, {}, out_ndim=2)
    assert norms.shape == (2, 3)
    np.testing.assert_allclose(norms, np.sum(w ** 2, axis=0), rtol=1e-6)


def test_inputs_are_never_written():
    w = np.ones((4, 2, 3, 3), np.float32)
    kept = w.copy()
    prune_math.pruned("Convolution", w, np.ones(4, np.float32), np.array([1, 0, 1, 0], np.float32))
    np.testing.assert_array_equal(w, kept)
    with pytest.raises(ValueError, match="cannot prune a Embed"):
        prune_math.output_channel_sq_norms("Embed", w)
