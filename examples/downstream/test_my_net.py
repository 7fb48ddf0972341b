"""Downstream tests using gcverify's fixtures."""
import nnabla as nn


def test_bn_folding_is_exact_and_removes_every_bn(gc_model, gc_convert, gc_assert_equivalent,
                                                   gc_count_functions, gc_assert_saved):
    model = gc_model("my_net")
    converted = gc_convert("bn_fold", model)
    assert gc_count_functions(converted.outputs, "BatchNormalization") == 0
    gc_assert_equivalent(model, converted, tolerance="float32")
    gc_assert_saved(model, converted)  # what you ship (.nnp) computes the same, bit for bit


def test_channel_last_on_my_device(gc_model, gc_convert, gc_assert_equivalent, gc_device):
    with nn.context_scope(gc_device.context()):
        model = gc_model("my_net")
        gc_assert_equivalent(model, gc_convert("channel_last", model))
