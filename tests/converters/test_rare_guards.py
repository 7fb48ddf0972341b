"""Guards no default model can reach (docs/coverage.md says why for each), checked on small graphs."""
import warnings

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

import converters as GC
from converters.rewrite import ConversionWarning


def _scope(build):
    params = {}
    with nn.parameter_scope("", params):
        out = build()
    flat = {}

    def walk(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(prefix + k + "/", v)
            else:
                flat[prefix + k] = v
    walk("", params)
    return out, flat


def test_a_bn_whose_variance_plus_eps_is_not_positive_is_kept_with_a_warning():
    x = nn.Variable((2, 3, 6, 6))
    y, params = _scope(lambda: PF.batch_normalization(PF.convolution(x, 4, (3, 3), name="c"), batch_stat=False,
                                                      name="bn"))
    var = next(v for k, v in params.items() if k.endswith("var"))
    var.d = -1.0  # var + eps < 0: no finite scale
    gc = GC.GraphConverter([GC.BatchNormalizationFoldingModifier()], params=params)
    with pytest.warns(ConversionWarning, match="not positive"):
        gc.convert(y)
    assert any("not positive" in e.reason for e in gc.last_result.reasons("kept"))


def test_a_bn_over_axis_0_is_linearized_as_a_bn_with_mean_0_and_var_1():
    x = nn.Variable((4, 5))  # (C, L): the channel axis is 0
    y, params = _scope(lambda: PF.batch_normalization(x, axes=[0], batch_stat=False, name="bn"))
    rng = np.random.RandomState(0)
    for k, v in params.items():
        v.d = rng.uniform(0.5, 1.5, v.shape)
    x.d = rng.normal(size=x.shape)
    y.forward()
    want = y.d.copy()
    c = GC.BatchNormalizationLinearConverter(params=params)
    z = c.convert(y, [x])
    z.forward()
    assert np.allclose(z.d, want, rtol=1e-5, atol=1e-6)
    assert any("mean=0, var=1" in e.reason for e in c.last_result.events if e.action == "linearized")


def test_an_activation_with_several_outputs_is_kept():
    x = nn.Variable((2, 3, 4))
    parts = F.split(x, axis=1)
    gc = GC.GraphConverter([GC.FixedPointActivationModifier(functions=("Split",))], params={})
    gc.convert(list(parts))
    assert any("it has 3 outputs" in e.reason for e in gc.last_result.reasons("kept"))


def test_low_rank_keeps_channel_last_convolutions():
    x = nn.Variable((2, 3, 8, 8))
    y, params = _scope(lambda: PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c"))
    m = GC.ChannelLastModifier([x])
    cl = GC.GraphConverter([m], params=params)
    y_cl = cl.convert(y)
    low = GC.LowRankConverter(energy=1.0, skip_if_larger=False, params={**params, **cl.last_result.new_parameters})
    low.convert(y_cl, m.inputs_cl)
    assert any("channel-last convolution" in e.reason for e in low.last_result.reasons("kept"))


def test_a_layout_pass_fences_a_function_already_in_its_layout_and_restores_a_passed_through_input():
    x = nn.Variable((2, 3, 8, 8))
    y, params = _scope(lambda: PF.convolution(x, 4, (3, 3), pad=(1, 1), channel_last=True, name="c"))
    gc = GC.GraphConverter([GC.ChannelLastModifier([x])], params=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.convert([y, x])  # the input is also an output
    events = gc.last_result.events
    assert any("already channel-last" in e.reason for e in events if e.action == "fenced")
    assert any(e.action == "restored" and "passed through" in e.reason for e in events)
