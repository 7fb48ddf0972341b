"""The need_grad rule for new parameters (gcverify/verify/gradients.py), judged in every row:
a planted freeze, a planted unfreeze, and the rule's reading of folds and settings."""
import pytest

import converters.rewrite as rewrite
from gcverify.zoo import zoo_spec


def _force(monkeypatch, suffix, value):
    """Every new parameter whose name ends with ``suffix`` gets ``need_grad=value``."""
    real = rewrite.Builder.parameter_buffer

    def forced(self, like, shape, name_suffix, need_grad=None, dtype=None, **kw):
        if name_suffix == suffix:
            need_grad = value
        args = (like, shape, name_suffix, need_grad) + ((dtype,) if dtype is not None else ())
        return real(self, *args)
    monkeypatch.setattr(rewrite.Builder, "parameter_buffer", forced)


def test_a_frozen_folded_weight_fails_the_row(matrix_verdict, monkeypatch):
    _force(monkeypatch, "bn_folded", False)
    verdict = matrix_verdict("bn_fold", zoo_spec("lenet"))
    assert verdict.failures and verdict.failures[0].startswith("[gradients] need_grad of a new parameter is wrong")
    assert "bn_folded has need_grad=False but should have True" in verdict.failures[0]
    assert verdict.row.gradient_mismatches >= 1


def test_a_trainable_weight_made_of_frozen_ones_fails_the_row(matrix_verdict, monkeypatch):
    _force(monkeypatch, "cl", True)  # transposed kernels: the frozen conv of bn_corners too
    verdict = matrix_verdict("channel_last", zoo_spec("bn_corners"))
    assert any("frozen/conv/W/cl has need_grad=True but should have False" in f for f in verdict.failures)


@pytest.mark.parametrize("converter", ["bn_fold", "bn_fold_opposite", "bn_linear", "channel_last",
                                       "bn_fold_channel_last", "low_rank", "fixed_point_per_channel", "qdq"])
def test_correct_converters_pass_it_on_frozen_and_half_frozen_layers(matrix_verdict, converter):
    verdict = matrix_verdict(converter, zoo_spec("bn_corners"))
    assert not [f for f in verdict.failures if f.startswith("[gradients]")]
    assert verdict.row.gradient_mismatches == 0 and verdict.row.new_parameters > 0


def test_a_frozen_conv_under_a_trainable_bn_folds_into_trainable_weights(matrix_verdict):
    """The rule, not the weight's own flag: W' = c0 W carries gamma, which still trains."""
    import converters as GC
    from converters.graph_view import GraphView
    model = zoo_spec("bn_corners").build()
    gc = GC.GraphConverter([GC.BatchNormalizationFoldingModifier()], params=model.params)
    gc.convert(list(model.outputs))
    new = gc.last_result.new_parameters
    assert new["half-frozen/conv/W/bn_folded"].need_grad and new["half-frozen/conv/b/bn_folded"].need_grad
    assert not new["frozen/conv/W/bn_folded"].need_grad and not new["frozen/conv/b/bn_folded"].need_grad
    assert GraphView(model.outputs, model.params)  # the original is still a graph
