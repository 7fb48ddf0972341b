"""QAT scales from recorded ranges, without graphs: what the integers cover, against an
independent fake-quantizer, NNabla's own formula where ours agrees, and where it clips."""
from collections import OrderedDict

import nnabla as nn
import numpy as np
import pytest

from converters import qat_math


def fake_quant(x, scale, zero, qmin=-128, qmax=127):
    """ONNX QuantizeLinear + DequantizeLinear, written from their definition."""
    return (np.clip(np.round(x / scale) + zero, qmin, qmax) - zero) * scale


def nnabla_scale(callback, state, **kw):
    """NNabla's get_scale_zeropoint for a recorder state, run in a private parameter scope."""
    with nn.parameter_scope("", OrderedDict()):
        for name, value in state.items():
            nn.parameter.get_parameter_or_create(name, (1, 1), np.full((1, 1), value, np.float32))
        scale, zero = callback.get_scale_zeropoint(nn.Variable((1, 1)), name="x", **kw)
        return float(scale.d.reshape(-1)[0]), float(zero.d.reshape(-1)[0])


def test_int_bounds():
    assert qat_math.int_bounds() == (-128, 127)
    assert qat_math.int_bounds(narrow_range=True) == (-127, 127)
    assert qat_math.int_bounds(signed=False) == (0, 255)


@pytest.mark.parametrize("callback_name", ["AbsMaxRecorderCallback", "MaxMaxRecorderCallback",
                                           "MaxMvaRecorderCallback"])
@pytest.mark.parametrize("narrow, pow2", [(False, "NOTROUND"), (True, "ROUND"), (False, "CEIL")])
def test_max_kinds_agree_with_nnabla(callback_name, narrow, pow2):
    from nnabla.utils import qnn
    want = nnabla_scale(getattr(qnn, callback_name), {"M-x": 2.7}, narrow_range=narrow, round_method=pow2)
    scale, zero = qat_math.recorded_scale("max", [np.full((1, 1), 2.7)], narrow_range=narrow, pow2=pow2)
    assert scale.shape == (1, 1) and zero.shape == (1, 1)
    np.testing.assert_allclose(scale.reshape(-1)[0], want[0], rtol=1e-6)
    assert zero.reshape(-1)[0] == want[1] == 0


def test_min_max_symmetric_covers_the_range_where_nnablas_scale_clips_half_of_it():
    from nnabla.utils import qnn
    relu = np.linspace(0, 6, 61)  # a ReLU output, recorded range [0, 6]
    scale, zero = qat_math.recorded_scale("minmax", [np.zeros(1), np.full(1, 6.0)])
    assert float(np.abs(fake_quant(relu, scale, zero) - relu).max()) <= scale[0] / 2 + 1e-6
    theirs, their_zero = nnabla_scale(qnn.MinMaxMinMaxRecorderCallback, {"m-x": 0.0, "M-x": 6.0})
    assert their_zero == 0 and np.isclose(theirs, 6 / 255)
    clipped = fake_quant(relu, theirs, their_zero)
    assert clipped.max() < 3.0  # everything above 127 * 6/255 = 2.99 is lost


def test_asymmetric_maps_the_range_onto_all_integers_with_zero_exact():
    scale, zero = qat_math.recorded_scale("minmax", [np.full(1, -1.0), np.full(1, 3.0)], zero_point=True)
    np.testing.assert_allclose(scale, [4 / 255], rtol=1e-6)
    assert zero[0] == -128 + 64  # -1 / (4/255) = -63.75 -> -64
    xs = np.array([-1.0, 0.0, 3.0])
    np.testing.assert_allclose(fake_quant(xs, scale, zero), xs, atol=scale[0] / 2)
    assert fake_quant(np.zeros(1), scale, zero)[0] == 0


def test_pow2_rounds_the_scale_and_bad_methods_are_named():
    s = 3 / 127.5
    for method, want in (("CEIL", 2 ** np.ceil(np.log2(s))), ("FLOOR", 2 ** np.floor(np.log2(s))),
                         ("ROUND", 2 ** np.round(np.log2(s))), ("NOTROUND", s)):
        scale, _ = qat_math.recorded_scale("max", [np.full(1, 3.0)], pow2=method)
        np.testing.assert_allclose(scale, [want], rtol=1e-6)
    with pytest.raises(ValueError, match="pow2 must be one of CEIL, ROUND, FLOOR, NOTROUND, got 'UP'"):
        qat_math.recorded_scale("max", [np.full(1, 3.0)], pow2="UP")
    with pytest.raises(ValueError, match="unknown recorder kind 'abs'"):
        qat_math.recorded_scale("abs", [np.full(1, 3.0)])


def test_an_empty_or_broken_range_has_no_scale():
    """NNabla gives these a zero (or 1e-24) scale: quantizing then divides by zero."""
    assert qat_math.recorded_scale("max", [np.zeros(1)]) is None
    assert qat_math.recorded_scale("minmax", [np.zeros(1), np.zeros(1)]) is None
    assert qat_math.recorded_scale("max", [np.full(1, np.inf)]) is None
    from nnabla.utils import qnn
    with np.errstate(all="ignore"):
        assert nnabla_scale(qnn.AbsMaxRecorderCallback, {"M-x": 0.0})[0] == 0


def test_bias_goes_on_the_accumulator_grid_where_int8_would_clip_it():
    sx, sw = np.float32(2 / 255), np.float32(0.2 / 255)
    step = qat_math.bias_scale([sx], [sw])
    np.testing.assert_allclose(step, [sx * sw], rtol=1e-6)
    bias = np.array([0.05, -0.2, 0.01])
    on_grid = np.round(bias / step) * step
    np.testing.assert_allclose(on_grid, bias, atol=step[0] / 2)
    assert np.abs(fake_quant(bias, step, 0) - bias).max() > 0.19  # NNabla's int8 bias: clipped
