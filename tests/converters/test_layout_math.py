"""Permutation algebra and weight transforms of layout conversion, without a graph."""
import itertools

import numpy as np
import pytest

from converters import layout_math as lm


def test_move_axis_perm_channel_last_and_back():
    assert lm.move_axis_perm(4, 1, 3) == (0, 2, 3, 1)
    assert lm.move_axis_perm(5, 4, 1) == (0, 4, 1, 2, 3)
    for n in (3, 4, 5):
        there = lm.move_axis_perm(n, 1, n - 1)
        back = lm.move_axis_perm(n, n - 1, 1)
        assert lm.relayout_axes(there, lm.identity(n)) == back


@pytest.mark.parametrize("p,q", list(itertools.product(itertools.permutations(range(4)), repeat=2))[::37])
def test_relayout_axes_turns_layout_p_into_q(rng, p, q):
    t = rng.randn(2, 3, 4, 5)
    held = np.transpose(t, p)
    assert np.array_equal(np.transpose(held, lm.relayout_axes(p, q)), np.transpose(t, q))


def test_drop_axes_matches_a_reduction(rng):
    t = rng.randn(2, 3, 4, 5)
    p = (0, 2, 3, 1)
    for axes in ([1], [2, 3], [0, 3]):
        reduced_then_laid = np.transpose(t.sum(axis=tuple(axes)), lm.drop_axes(p, axes))
        laid_then_reduced = np.transpose(t, p).sum(axis=tuple(lm.invert(p)[a] for a in axes))
        assert np.allclose(reduced_then_laid, laid_then_reduced)


def test_insert_axis_matches_stack(rng):
    a, b = rng.randn(2, 3, 4), rng.randn(2, 3, 4)
    p = (0, 2, 1)
    for axis in range(4):
        expected = np.transpose(np.stack([a, b], axis=axis), lm.insert_axis(p, axis))
        got = np.stack([np.transpose(a, p), np.transpose(b, p)], axis=axis)
        assert np.array_equal(got, expected)


def test_expand_trailing_and_permute_values():
    assert lm.expand_trailing([5, 6], 4, 0) == [0, 0, 5, 6]
    assert lm.expand_trailing([5], 3, lambda i: i * 10) == [0, 10, 5]
    assert lm.permute_values(["n", "c", "h", "w"], (0, 2, 3, 1)) == ["n", "h", "w", "c"]


def test_affine_rows_follow_the_flatten_order(rng):
    x = rng.randn(2, 3, 4, 5)
    w = rng.randn(60, 7)
    p = (0, 2, 3, 1)
    m = lm.affine_rows(w.shape, x.shape, 1, p)
    expected = x.reshape(2, -1) @ w
    got = np.transpose(x, p).reshape(2, -1) @ m.apply(w)
    assert np.allclose(got, expected)
    assert m.moves_data(w.shape)


def test_affine_rows_with_multi_axis_output(rng):
    x = rng.randn(2, 3, 2, 2)
    w = rng.randn(12, 2, 3)
    p = (0, 3, 1, 2)
    got = np.tensordot(np.transpose(x, p).reshape(2, -1), lm.affine_rows(w.shape, x.shape, 1, p).apply(w), 1)
    assert np.allclose(got, np.tensordot(x.reshape(2, -1), w, 1))


def test_conv_weight_transforms_are_inverse_and_match_numpy_layout(rng):
    w = rng.randn(8, 3, 5, 7)
    cl = lm.conv_weight_to_last(w)
    assert cl.shape == (8, 5, 7, 3)
    assert cl[2, 4, 6, 1] == w[2, 1, 4, 6]
    assert np.array_equal(lm.conv_weight_to_first(cl), w)
    m = lm.OperandMap(perm=lm.move_axis_perm(4, 1, 3))
    assert np.array_equal(m.apply(w), cl)


def test_operand_map_pure_reshape_detection():
    assert not lm.OperandMap(perm=(0, 2, 3, 1)).moves_data((1, 16, 1, 1))  # BN statistics
    assert not lm.OperandMap(perm=(0, 2, 3, 1)).moves_data((32, 16, 1, 1))  # 1x1 kernel
    assert lm.OperandMap(perm=(0, 2, 3, 1)).moves_data((32, 16, 3, 3))
    assert lm.OperandMap(perm=(0, 2, 3, 1)).shape_of((32, 16, 3, 3)) == (32, 3, 3, 16)
    assert lm.OperandMap(post=(6, 3, 3, 1)).shape_of((6, 3, 3)) == (6, 3, 3, 1)
    assert lm.OperandMap(perm=(0, 1, 2)).is_identity()
