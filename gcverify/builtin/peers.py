"""NNabla 1.39's built-in modifiers as matrix rows (``kind="peer"``): run beside ours on the
same models, their failures are expected and shown with the diagnosis.

This is the only place that runs NNabla's converters (the tests of its bugs call
:func:`run_nnabla` too). They find parameters by name through the *current* parameter scope
and write new parameters into it (``w-folded``, ``W_cl``, ``c0-...``), so every run happens in
a throwaway scope holding the model's parameters by name, which never reaches the global
scope.
"""
import nnabla as nn

from ..core.conversion import Conversion
from ..core.expectations import TOLERANCES, Removes
from ..core.model import scope_holding
from ..core.registry import ConverterSpec
from .ours import CHANNEL_FIRST_OPS, CHANNEL_LAST_OPS, CPU_NOT_SLOWER, NO_BN, NO_BN_LINEAR, NO_BN_OPPOSITE, \
    TENSOR_CORE

__all__ = ["PEERS", "run_nnabla", "nnabla_bn_fold", "nnabla_bn_self_fold",
           "nnabla_channel_last", "nnabla_channel_roundtrip"]


def run_nnabla(outputs, params, make_modifiers, steps=1):
    """Run NNabla's ``GraphConverter`` ``steps`` times, each with ``make_modifiers(NGC, done)``
    (``done``: the modifier lists of earlier steps), in a throwaway scope holding ``params``;
    returns ``(outputs, modifier lists, {name: parameter} of the scope afterwards)``."""
    import nnabla.experimental.graph_converters as NGC
    with scope_holding(params):
        outputs, mods = list(outputs), []
        for _ in range(steps):
            mods.append(make_modifiers(NGC, mods))
            outputs = NGC.GraphConverter(mods[-1]).convert(list(outputs))
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
)
