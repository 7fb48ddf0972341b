"""One way to feed and read a conversion (gcverify.evaluation), shared by the matrix and the
fuzzer: stated layouts, guessed ones, the tolerance floor, spec variants."""
import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from gcverify.verify.numeric import compare_arrays
from gcverify.core.layouts import channel_last_perm
from gcverify.verify.execution import feed_conversion, guess_layouts, run_conversion, runnable_outputs
from gcverify.core.model import Model
from gcverify.core.conversion import as_conversion, Conversion
from gcverify.core.expectations import Tolerance, TOLERANCES
from gcverify.core.registry import ConverterSpec


def _scales(c, shape):
    return nn.Variable.from_numpy_array(np.arange(1.0, c + 1.0, dtype=np.float32).reshape(shape))


def _model(rng, shape):
    """y = tanh(s_c * x + x) with a different scale s_c per channel: layouts matter."""
    x = nn.Variable(shape)
    y = F.tanh(x * _scales(shape[1], (1, shape[1], 1, 1)) + x)
    return Model("m", [x], [y], [rng.randn(*shape).astype(np.float32)])


def _channel_last_copy(model):
    """The model's function computed in channel-last order: input and output moved."""
    shape = model.inputs[0].shape
    x_cl = nn.Variable((shape[0], shape[2], shape[3], shape[1]))
    return x_cl, F.tanh(x_cl * _scales(shape[1], (1, 1, 1, shape[1])) + x_cl)


def test_stated_layouts_are_applied_both_ways(rng):
    model = _model(rng, (2, 3, 4, 5))
    reference = model.forward()
    x_cl, y_cl = _channel_last_copy(model)
    perm = channel_last_perm(4)
    stated = Conversion([y_cl], [x_cl], input_perms=[perm], output_perms=[perm])
    np.testing.assert_array_equal(run_conversion(stated, model.input_data)[0], reference[0])
    unstated_output = Conversion([y_cl], [x_cl], input_perms=[perm])
    assert run_conversion(unstated_output, model.input_data)[0].shape == (2, 4, 5, 3)
    given = Conversion([y_cl], [x_cl], input_data=[np.zeros((2, 4, 5, 3), np.float32)], output_perms=[perm])
    np.testing.assert_array_equal(run_conversion(given, model.input_data)[0], np.zeros((2, 3, 4, 5)))


def test_unstated_layouts_are_guessed_from_shapes_only_where_told(rng):
    model = _model(rng, (2, 3, 4, 5))
    x_cl, y_cl = _channel_last_copy(model)
    guessed = guess_layouts(as_conversion(([y_cl], [x_cl]), model), model)
    assert guessed.input_perms == [(0, 2, 3, 1)] and guessed.output_perms == [(0, 2, 3, 1)]
    np.testing.assert_array_equal(run_conversion(guessed, model.input_data)[0], model.forward()[0])
    # (N, 3, 3, 3): the channel-last shape is the same shape, so only a stated layout is right
    cube = _model(rng, (1, 3, 3, 3))
    x_cl, y_cl = _channel_last_copy(cube)
    guessed = guess_layouts(Conversion([y_cl], [x_cl]), cube)
    assert guessed.input_perms == [None]
    assert not np.allclose(run_conversion(guessed, cube.input_data)[0], cube.forward()[0])
    stated = Conversion([y_cl], [x_cl], input_perms=[(0, 2, 3, 1)], output_perms=[(0, 2, 3, 1)])
    np.testing.assert_array_equal(run_conversion(stated, cube.input_data)[0], cube.forward()[0])


def test_a_shape_that_does_not_fit_names_the_input(rng):
    model = _model(rng, (2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"converted input 0 has shape \(2, 3, 5, 4\)"):
        feed_conversion(Conversion(model.outputs, [nn.Variable((2, 3, 5, 4))]), model.input_data)


def test_plain_outputs_need_no_emulation_and_keep_the_models_inputs(rng):
    model = _model(rng, (2, 3, 4, 5))
    conversion = as_conversion(Conversion(list(model.outputs)), model)
    assert conversion.inputs == model.inputs and conversion.params == conversion.parameters
    assert runnable_outputs(conversion, cpu=True) is conversion.outputs


def test_the_floor_allows_absolute_error_near_zero_and_brief_agrees(rng):
    expected = np.zeros((3, 4), np.float32)
    actual = expected + 5e-6
    assert not compare_arrays(actual, expected, Tolerance(0.0, 1e-4)).passed
    assert compare_arrays(actual, expected, Tolerance(0.0, 1e-4, floor=1e-5)).passed
    for tol in (Tolerance(0.0, 1e-4, floor=1e-5), TOLERANCES["float32"], TOLERANCES["float32-fixed"],
                TOLERANCES["exact"]):
        for noise in (0.0, 1e-6, 1e-4, 1e-2):
            e = rng.randn(4, 5)
            a = e + noise * rng.randn(4, 5)
            floor = 1e-6  # the output's measured noise floor, used by the float32 preset
            full, brief = compare_arrays(a, e, tol, noise=floor), compare_arrays(a, e, tol, brief=True, noise=floor)
            assert (full.passed, full.max_abs, full.scale) == (brief.passed, brief.max_abs, brief.scale)
            assert brief.passed or brief.mismatches == full.mismatches > 0
    assert Tolerance().merged({"floor": 1e-3}).describe().endswith("floor=0.001")


def test_a_spec_variant_passes_options_and_replaces_fields():
    seen = []

    def convert(model, scale=1):
        seen.append(scale)
        return model.outputs
    spec = ConverterSpec("base", convert, tolerance=TOLERANCES["exact"])
    variant = spec.variant("base_x3", dict(scale=3), tolerance=TOLERANCES["float32"])
    variant.convert(Model("m", [], [], []))
    assert seen == [3] and variant.name == "base_x3" and variant.tolerance == TOLERANCES["float32"]
    assert spec.variant("same").convert is convert
    with pytest.raises(ValueError, match="identifier"):
        spec.variant("base-x3")


def test_the_float32_preset_is_a_multiple_of_the_noise_floor_and_says_so():
    e = np.linspace(-1, 1, 20)
    tol = TOLERANCES["float32"]
    assert compare_arrays(e + 3.9e-6, e, tol, noise=1e-6).passed  # under 4x the floor (+1e-7 of the scale)
    failed = compare_arrays(e + 4.2e-6, e, tol, noise=1e-6)
    assert not failed.passed and failed.noise_multiple == pytest.approx(4.2)
    with pytest.raises(ValueError, match="multiple of the noise floor: measure the floor"):
        compare_arrays(e, e, tol)  # without a floor the verdict has no ground
    assert tol.describe() == "<= 4x noise floor atol=1e-07*max|y|"
