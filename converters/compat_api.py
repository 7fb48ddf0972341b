"""The rest of NNabla 1.39's public modifiers, same names, arguments and defaults, on our
engine: ``import converters as GC`` runs code written for
``nnabla.experimental.graph_converters``.

Every one keeps our guarantees (the original graph, its parameter values and the global
parameter scope untouched; guards first, with recorded reasons). Where NNabla's behaviour is
wrong these do the right thing; ``docs/nnabla_bugs.md`` lists the differences.
"""
from . import bn_fold, fused_bn, graph_edits, prune_math, qat
from .modifier_api import Modifier

__all__ = [
    "IdentityModifier", "RemoveFunctionModifier", "BatchNormBatchStatModifier", "TestModeModifier",
    "NoGradModifier", "PruningModifier", "AddBiasModifier", "BatchNormalizationFoldingModifierInner",
    "BatchNormalizationFoldingOppositeModifierInner", "FusedBatchNormalizationModifier",
    "UnfusedBatchNormalizationModifier", "QuantizeNonQNNToRecordingModifier",
    "QuantizeRecordingToTrainingModifier",
]


class IdentityModifier(Modifier):
    """A fresh copy of the graph; ``inputs={x: x2}`` makes it read ``x2`` wherever it read the
    leaf ``x`` (``copy_value=True``: ``x2`` first gets ``x``'s data and gradient)."""

    def __init__(self, inputs=None, copy_value=False):
        self._passes = [graph_edits.ReplaceInputs(inputs, copy_value)]


class RemoveFunctionModifier(Modifier):
    """Remove the functions whose type is in ``rm_funcs`` (their readers read their input 0)."""

    def __init__(self, rm_funcs=()):
        self._passes = [graph_edits.RemoveFunctions(rm_funcs)]


class BatchNormBatchStatModifier(Modifier):
    """``batch_stat=True`` BatchNormalization / FusedBatchNormalization -> ``batch_stat=False``."""

    def __init__(self):
        self._passes = [graph_edits.UseRunningStatistics()]


class TestModeModifier(Modifier):
    """BNs on running statistics, then the functions of ``rm_funcs`` removed."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, rm_funcs=()):
        self._passes = [graph_edits.UseRunningStatistics(), graph_edits.RemoveFunctions(rm_funcs)]


class NoGradModifier(Modifier):
    """Parameters read without gradient (same memory, ``need_grad=False``)."""

    def __init__(self):
        self._passes = [graph_edits.StopParameterGradients()]


class PruningModifier(Modifier):
    """Zero the output channels whose weights' sum of squares is <= ``pruning_threshold``.

    ``channel_last`` is accepted for NNabla's signature; each layer's own layout is used."""

    def __init__(self, pruning_threshold, functions_to_prune=prune_math.PRUNABLE, channel_last=False):
        self.channel_last = bool(channel_last)
        self._passes = [graph_edits.PruneChannels(pruning_threshold, functions_to_prune)]


class AddBiasModifier(Modifier):
    """A zero bias for bias-less inner-product layers next to a BatchNormalization."""

    def __init__(self):
        self._passes = [graph_edits.AddZeroBias()]


class BatchNormalizationFoldingModifierInner(Modifier):
    """BN folded into the preceding layer (what BatchNormalizationFoldingModifier does)."""

    def __init__(self, channel_last=False):
        self._passes = [bn_fold.FoldBatchNorm(opposite=False, channel_last=channel_last)]


class BatchNormalizationFoldingOppositeModifierInner(Modifier):
    """BN folded into the following layer, where that is exact."""

    def __init__(self, channel_last=False):
        self._passes = [bn_fold.FoldBatchNorm(opposite=True, channel_last=channel_last)]


class FusedBatchNormalizationModifier(Modifier):
    """``BatchNormalization -> Add2 -> ReLU`` -> one FusedBatchNormalization, where exact."""

    def __init__(self):
        self._passes = [fused_bn.FuseBatchNorm()]


class UnfusedBatchNormalizationModifier(Modifier):
    """FusedBatchNormalization -> ``BatchNormalization -> Add2 -> ReLU``."""

    def __init__(self):
        self._passes = [fused_bn.UnfuseBatchNorm()]


class QuantizeNonQNNToRecordingModifier(Modifier):
    """QAT step 1: recorders before the inputs of the layers ``config`` (a
    ``nnabla.utils.qnn.QATConfig``) selects; their state belongs to the converted graph."""

    def __init__(self, functions_ranks, config=None, training=True):
        self._passes = [qat.RecordForQAT(functions_ranks, config, training)]


class QuantizeRecordingToTrainingModifier(Modifier):
    """QAT step 2: each recorder of a recording graph -> QuantizeLinear + DequantizeLinear
    with its recorded range (convert the recording graph itself, recorders in)."""

    def __init__(self, functions_ranks, config=None):
        self._passes = [qat.RecordingToQDQ(functions_ranks, config)]
