"""NNabla 1.39's built-in modifiers as matrix rows (``kind="peer"``): run beside ours on the
same models, their failures are expected and shown with the diagnosis.

This is the only place that runs NNabla's converters (the tests of its bugs call
:func:`run_nnabla` too). They find parameters by name through the *current* parameter scope
and write new parameters into it (``w-folded``, ``W_cl``, ``c0-...``), so every run happens in
a throwaway scope holding the model's parameters by name, which never reaches the global
scope. The peers of NNabla's other modifiers (issue #13) are judged by the rules of our rows
in :mod:`.compat`, on the same inputs (a training twin, our fused model).
"""
from dataclasses import replace

import nnabla as nn

from . import compat
from ..core.conversion import Conversion
from ..core.expectations import TOLERANCES, Removes
from ..core.model import scope_holding
from ..core.registry import ConverterSpec
from .ours import CHANNEL_FIRST_OPS, CHANNEL_LAST_OPS, CPU_NOT_SLOWER, NO_BN, NO_BN_LINEAR, NO_BN_OPPOSITE, \
    TENSOR_CORE

__all__ = ["PEERS", "run_nnabla", "nnabla_bn_fold", "nnabla_bn_self_fold",
           "nnabla_channel_last", "nnabla_channel_roundtrip", "beside", "nnabla_fused_bn",
           "nnabla_unfused_bn", "nnabla_batch_stat_off", "nnabla_test_mode", "nnabla_identity_modifier",
           "nnabla_no_grad", "nnabla_add_bias", "nnabla_prune", "nnabla_remove_function",
           "nnabla_qat_recording", "nnabla_qat_qdq"]


def run_nnabla(outputs, params, make_modifiers, steps=1, between=None):
    """Run NNabla's ``GraphConverter`` ``steps`` times, each with ``make_modifiers(NGC, done)``
    (``done``: the modifier lists of earlier steps), in a throwaway scope holding ``params``;
    ``between(step, outputs)`` (if given) runs after each step, in that scope (calibration
    forwards). Returns ``(outputs, modifier lists, {name: parameter} of the scope afterwards)``."""
    import nnabla.experimental.graph_converters as NGC
    with scope_holding(params):
        outputs, mods = list(outputs), []
        for step in range(steps):
            mods.append(make_modifiers(NGC, mods))
            outputs = NGC.GraphConverter(mods[-1]).convert(list(outputs))
            if between is not None:
                between(step, outputs)
        names = nn.get_parameters(grad_only=False)
    return outputs, mods, dict(names)


def _run(model, make_modifiers, steps=1):
    return run_nnabla(model.outputs, model.params, make_modifiers, steps)


def nnabla_bn_fold(model, opposite=False):
    """NNabla 1.39 BatchNormalizationFoldingModifier."""
    outputs, _, names = _run(model, lambda NGC, _: [NGC.BatchNormalizationFoldingModifier(opposite=opposite)])
    return Conversion(outputs, list(model.inputs), parameters=names)


def nnabla_bn_self_fold(model):
    """NNabla 1.39 BatchNormalizationSelfFoldingModifier."""
    outputs, _, names = _run(model, lambda NGC, _: [NGC.BatchNormalizationSelfFoldingModifier()])
    return Conversion(outputs, list(model.inputs), parameters=names)


def nnabla_channel_last(model):
    """NNabla 1.39 ChannelLastModifier."""
    outputs, mods, names = _run(model, lambda NGC, _: [NGC.ChannelLastModifier(list(model.inputs))])
    return Conversion(outputs, list(mods[0][0].inputs_cl), parameters=names)


def nnabla_channel_roundtrip(model):
    """NNabla 1.39 ChannelLastModifier then ChannelFirstModifier."""
    def make(NGC, done):
        if not done:
            return [NGC.ChannelLastModifier(list(model.inputs))]
        return [NGC.ChannelFirstModifier(list(done[0][0].inputs_cl))]
    outputs, mods, names = _run(model, make, steps=2)
    return Conversion(outputs, list(mods[1][0].inputs_cf), parameters=names)


# --- NNabla's other modifiers (issue #13), on the inputs our rows in .compat convert --------
def _converted(make_modifiers, outputs, params, inputs):
    outputs, _, names = run_nnabla(outputs, params, make_modifiers)
    return Conversion(outputs, list(inputs), parameters=names)


def nnabla_fused_bn(model):
    """NNabla 1.39 FusedBatchNormalizationModifier."""
    return _converted(lambda NGC, _: [NGC.FusedBatchNormalizationModifier()], model.outputs,
                      model.params, model.inputs)


def nnabla_unfused_bn(model):
    """NNabla 1.39 UnfusedBatchNormalizationModifier on the model fused by ours."""
    fuse, fused = compat.fused_model(model)
    return _converted(lambda NGC, _: [NGC.UnfusedBatchNormalizationModifier()], fused,
                      dict(model.params, **fuse.last_result.new_parameters), model.inputs)


def nnabla_batch_stat_off(model):
    """NNabla 1.39 BatchNormBatchStatModifier on the model's training twin."""
    twin = compat.twin_for(model, dropout=False)
    return _converted(lambda NGC, _: [NGC.BatchNormBatchStatModifier()], twin.outputs, twin.params,
                      model.inputs)


def nnabla_test_mode(model):
    """NNabla 1.39 TestModeModifier(rm_funcs=['Dropout']) on the model's training twin."""
    twin = compat.twin_for(model, dropout=True)  # NNabla's TestModeModifier() is a list of two
    return _converted(lambda NGC, _: list(NGC.TestModeModifier(rm_funcs=list(compat.TRAINING_ONLY))),
                      twin.outputs, twin.params, model.inputs)


nnabla_test_mode.__test__ = False


def nnabla_identity_modifier(model):
    """NNabla 1.39 IdentityModifier({x: x2})."""
    replacements = compat.new_inputs(model)
    return _converted(lambda NGC, _: [NGC.IdentityModifier(dict(zip(model.inputs, replacements)))],
                      model.outputs, model.params, replacements)


def nnabla_no_grad(model):
    """NNabla 1.39 NoGradModifier on a model whose parameters are not in the current scope
    (built in a private scope, as every zoo model is): it looks them up there."""
    return _converted(lambda NGC, _: [NGC.NoGradModifier()], model.outputs, {}, model.inputs)


def nnabla_add_bias(model):
    """NNabla 1.39 AddBiasModifier."""
    return _converted(lambda NGC, _: [NGC.AddBiasModifier()], model.outputs, model.params, model.inputs)


def nnabla_prune(model):
    """NNabla 1.39 PruningModifier(2.0)."""
    return _converted(lambda NGC, _: [NGC.PruningModifier(compat.PRUNING_THRESHOLD)], model.outputs,
                      model.params, model.inputs)


def nnabla_remove_function(model):
    """NNabla 1.39 RemoveFunctionModifier(['BatchNormalization'])."""
    return _converted(lambda NGC, _: [NGC.RemoveFunctionModifier(list(compat.REMOVED_TYPES))],
                      model.outputs, model.params, model.inputs)


def nnabla_qat_recording(model):
    """NNabla 1.39 QuantizeNonQNNToRecordingModifier (recorder state in the throwaway scope)."""
    ranks = compat.qat_ranks(model.outputs)
    return _converted(lambda NGC, _: [NGC.QuantizeNonQNNToRecordingModifier(ranks, compat.qat_config())],
                      model.outputs, model.params, model.inputs)


def nnabla_qat_qdq(model):
    """NNabla 1.39's QAT flow in one throwaway scope: QuantizeNonQNNToRecordingModifier, one
    calibration forward, RemoveFunctionModifier(recorders), QuantizeRecordingToTrainingModifier
    (which finds the recorded ranges by name in the scope)."""
    cfg, graphs = compat.qat_config(), [list(model.outputs)]
    recorders = [cfg.recorder_activation().name(), cfg.recorder_weight().name()]
    steps = (lambda NGC: NGC.QuantizeNonQNNToRecordingModifier(compat.qat_ranks(graphs[-1]), cfg),
             lambda NGC: NGC.RemoveFunctionModifier(rm_funcs=recorders),
             lambda NGC: NGC.QuantizeRecordingToTrainingModifier(compat.qat_ranks(graphs[-1]), cfg))

    def between(step, outputs):
        graphs.append(list(outputs))
        if step == 0:
            compat.calibrate(model, outputs)
    outputs, _, names = run_nnabla(model.outputs, model.params, lambda NGC, done: [steps[len(done)](NGC)],
                                   steps=len(steps), between=between)
    return Conversion(outputs, list(model.inputs), parameters=names)


def beside(name, convert):
    """NNabla's ``convert`` as a peer judged exactly as our row ``name`` of :mod:`.compat`."""
    ours = next(s for s in compat.COMPAT if s.name == name)
    return replace(ours, name=convert.__name__, convert=convert, kind="peer",
                   description=(convert.__doc__ or "").strip())


_peer = ConverterSpec.from_function

PEERS = (
    _peer(nnabla_bn_fold, "peer", layers=NO_BN, speed=CPU_NOT_SLOWER),
    _peer(nnabla_bn_fold, "peer", layers=NO_BN_OPPOSITE).variant(
        "nnabla_bn_fold_opposite", dict(opposite=True),
        description="NNabla 1.39 BatchNormalizationFoldingModifier(opposite=True)"),
    _peer(nnabla_bn_self_fold, "peer", layers=NO_BN_LINEAR, speed=CPU_NOT_SLOWER),
    _peer(nnabla_channel_last, "peer", layers=tuple(Removes(w) for w in CHANNEL_FIRST_OPS),
          cpu_emulation=True, speed=TENSOR_CORE),
    _peer(nnabla_channel_roundtrip, "peer", tolerance=TOLERANCES["exact"],
          layers=tuple(Removes(w) for w in CHANNEL_LAST_OPS)),
    *(beside(name, convert) for name, convert in (
        ("fused_bn", nnabla_fused_bn), ("unfused_bn", nnabla_unfused_bn),
        ("batch_stat_off", nnabla_batch_stat_off), ("test_mode", nnabla_test_mode),
        ("identity_modifier", nnabla_identity_modifier), ("no_grad", nnabla_no_grad),
        ("add_bias", nnabla_add_bias), ("prune", nnabla_prune),
        ("remove_function", nnabla_remove_function), ("qat_recording", nnabla_qat_recording),
        ("qat_qdq", nnabla_qat_qdq))),
)
