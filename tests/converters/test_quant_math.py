"""quant_math without a graph; NNabla's own functions serve as references where they exist."""
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from converters import quant_math as qm


def _forward(y):
    y.forward()
    return y.d.copy()


@pytest.mark.parametrize("n, sign", [(2, True), (4, True), (8, True), (8, False), (16, True)])
def test_power_of_two_delta_is_the_smallest_that_does_not_clip(rng, n, sign):
    levels = qm.fixed_point_levels(n, sign)
    # random magnitudes plus exact powers of two times the level count (the boundary case)
    m = np.concatenate([rng.lognormal(0, 3, 200), levels * 2.0 ** np.arange(-6, 6)])
    delta = qm.power_of_two_delta(m, n, sign).astype(np.float64)
    assert np.all(np.log2(delta) == np.round(np.log2(delta)))  # powers of two
    assert np.all(levels * delta >= m)  # nothing clips
    assert np.all(levels * delta / 2 < m)  # half of it would clip: the smallest such step
    assert qm.power_of_two_delta(0.0, n, sign) == 1.0


def test_per_channel_abs_max_keeps_the_channel_axis(rng):
    w = rng.normal(size=(4, 3, 2, 2))
    per_channel = qm.abs_max(w, keep_axes=(0,))
    assert per_channel.shape == (4, 1, 1, 1)
    np.testing.assert_array_equal(per_channel.ravel(), np.abs(w).reshape(4, -1).max(axis=1))
    assert qm.abs_max(w) == np.abs(w).max()
    assert qm.abs_max(np.zeros((5, 3)), keep_axes=(1,)).shape == (1, 3)


@pytest.mark.parametrize("sign", [True, False])
def test_fixed_point_reference_matches_nnabla_and_the_grid(rng, sign):
    n, delta = 6, 2.0 ** -3
    x = rng.normal(0, 3, (1000,)).astype(np.float32)
    ours = qm.fixed_point_quantize(x, n, delta, sign)
    theirs = _forward(F.fixed_point_quantize(nn.Variable.from_numpy_array(x), sign=sign, n=n,
                                             delta=delta))
    np.testing.assert_array_equal(ours, theirs)
    steps = ours / delta
    np.testing.assert_array_equal(steps, np.round(steps))  # integer multiples of delta
    top = qm.fixed_point_levels(n, sign) * delta
    inside = (x <= top) & (x >= (-top if sign else 0))
    assert np.all(np.abs(ours - x)[inside] <= delta / 2)
    assert np.all(ours <= top) and np.all(ours >= (-top if sign else 0))
    assert inside.sum() < x.size  # the case exercises clipping too


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("n", [4, 8])
def test_linear_scale_maps_the_range_and_keeps_zero_exact(rng, symmetric, n):
    lo, hi = rng.uniform(-3, -0.1, 7), rng.uniform(0.5, 4, 7)
    lo[0], hi[1] = 0.0, 0.0  # one-sided ranges are widened to contain 0
    scale, zp = qm.linear_scale(lo, hi, n, symmetric)
    qmin, qmax = qm.int_range(n, symmetric)
    assert np.all(scale > 0) and np.all(zp == np.round(zp)) and np.all((zp >= qmin) & (zp <= qmax))
    if symmetric:
        assert np.all(zp == 0) and qmin == -qmax
        np.testing.assert_allclose(scale * qmax, np.maximum(-lo, hi), rtol=1e-6)
    else:
        np.testing.assert_allclose(scale * (qmax - qmin), hi - lo, rtol=1e-6)
    np.testing.assert_array_equal(qm.quantize_dequantize(np.zeros(7), scale, zp, n, symmetric), 0)
    x = rng.uniform(lo, hi, (100, 7)).astype(np.float32)
    err = np.abs(qm.quantize_dequantize(x, scale, zp, n, symmetric) - x)
    assert np.all(err <= scale * 0.5 * (1 + 1e-5) + 1e-7)
    assert qm.linear_scale(0.0, 0.0, n, symmetric)[0] == 1.0  # an all-zero tensor


@pytest.mark.parametrize("symmetric", [True, False])
def test_quantize_dequantize_reference_matches_nnabla_int8(rng, symmetric):
    x = rng.normal(0, 2, (3, 4, 5)).astype(np.float32)
    scale, zp = qm.linear_scale(-4.0, 3.0, 8, symmetric)
    s = nn.Variable.from_numpy_array(np.full((1, 1, 1), scale, np.float32))
    z = nn.Variable.from_numpy_array(np.full((1, 1, 1), zp, np.float32))
    q = F.quantize_linear(nn.Variable.from_numpy_array(x), s, z, narrow_range=symmetric)
    theirs = _forward(F.dequantize_linear(q, s, z))
    np.testing.assert_array_equal(qm.quantize_dequantize(x, scale, zp, 8, symmetric), theirs)


def test_choose_rank_by_number_and_by_energy():
    s = np.array([4.0, 2.0, 1.0, 0.5])
    assert qm.choose_rank(s, rank=2) == 2 and qm.choose_rank(s, rank=99) == 4
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    for r, e in enumerate(energy, start=1):
        assert qm.choose_rank(s, energy=e) == r  # reaching exactly e needs r values
        assert qm.choose_rank(s, energy=e + 1e-6 if r < 4 else 1.0) == min(r + 1, 4)
    assert qm.choose_rank(np.zeros(3), energy=0.5) == 1


@pytest.mark.parametrize("kw", [dict(rank=0), dict(rank=-1), dict(rank=2.5), dict(energy=0.0),
                                dict(energy=1.5), dict(), dict(rank=2, energy=0.5)])
def test_choose_rank_rejects_bad_arguments(kw):
    with pytest.raises(ValueError, match="rank|energy"):
        qm.choose_rank([1.0, 0.5], **kw)


def test_truncated_svd_error_is_the_discarded_singular_values(rng):
    m = rng.normal(size=(30, 12))
    a, b, s = qm.truncated_svd(m, rank=12)
    np.testing.assert_allclose(a @ b, m, atol=1e-5)
    for r in (1, 5, 11):
        a, b, s = qm.truncated_svd(m, rank=r)
        assert a.shape == (30, r) and b.shape == (r, 12)
        np.testing.assert_allclose(np.linalg.norm(m - a @ b), np.sqrt(np.sum(s[r:] ** 2)),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="matrix"):
        qm.truncated_svd(np.ones(3), rank=1)


def _spectrum_matrix(rng, shape, s):
    """A matrix of ``shape`` with singular values ``s`` (padded with zeros)."""
    u, _ = np.linalg.qr(rng.normal(size=(shape[0], shape[0])))
    v, _ = np.linalg.qr(rng.normal(size=(shape[1], shape[1])))
    k = min(shape)
    return (u[:, :k] * np.pad(s, (0, k - len(s)))) @ v[:, :k].T


@pytest.mark.parametrize("shape", [(64, 20), (20, 64), (33, 33), (1, 7), (7, 1)])
def test_gram_factors_agree_with_numpys_svd(rng, shape):
    m = rng.normal(size=shape)
    a, b, s = qm.truncated_svd(m, energy=1.0)
    np.testing.assert_allclose(s, np.linalg.svd(m, compute_uv=False), rtol=1e-10)
    assert np.all(np.diff(s) <= 0)
    assert a.shape == (shape[0], s.size) and b.shape == (s.size, shape[1])
    np.testing.assert_allclose(a @ b, m, atol=1e-5)  # full rank reproduces M
    u, sv, vt = np.linalg.svd(m, full_matrices=False)
    for r in range(1, s.size):
        a, b, _ = qm.truncated_svd(m, rank=r)
        best = (u[:, :r] * sv[:r]) @ vt[:r]  # Eckart-Young's M_r (gaps: unique)
        np.testing.assert_allclose(a @ b, best, atol=1e-5 * sv[0])
        # the discarded energy, and balanced factors as numpy's U sqrt(s), sqrt(s) V^T
        np.testing.assert_allclose(np.linalg.norm(m - a @ b), np.sqrt(np.sum(sv[r:] ** 2)),
                                   rtol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(a, axis=0), np.sqrt(sv[:r]), rtol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), np.sqrt(sv[:r]), rtol=1e-5)


def test_gram_factors_of_a_decaying_and_rank_deficient_spectrum(rng):
    s_true = np.array([10.0, 3.0, 1.0, 1e-2, 1e-4])  # then zeros: rank 5 of 30
    m = _spectrum_matrix(rng, (40, 30), s_true)
    a, b, s = qm.truncated_svd(m, energy=1.0)
    np.testing.assert_allclose(s[:5], s_true, rtol=1e-6)
    assert np.all(s[5:] < 1e-7 * s[0])  # exact zeros come out as rounding, not noise
    assert np.isfinite(a).all() and np.isfinite(b).all()
    np.testing.assert_allclose(a @ b, m, atol=1e-5 * s[0])
    for r in (1, 3, 5):
        a, b, _ = qm.truncated_svd(m, rank=r)
        error = np.linalg.norm(m - a.astype(np.float64) @ b)
        bound = np.sqrt(np.sum(s_true[r:] ** 2))
        assert abs(error - bound) <= 1e-5 * bound + 1e-6 * s[0]
    a, b, s = qm.truncated_svd(np.zeros((6, 4)), rank=2)
    assert np.all(a @ b == 0) and np.all(s == 0) and np.isfinite(a).all()
