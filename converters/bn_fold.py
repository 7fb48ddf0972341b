"""Batch-normalization passes (to be implemented: issue 3)."""
from .rewrite import GraphPass


class FoldBatchNorm(GraphPass):
    name = "bn_fold"

    def __init__(self, opposite=False, channel_last=False):
        self.opposite, self.channel_last = opposite, channel_last

    def plan(self, view):
        raise NotImplementedError("FoldBatchNorm is not implemented yet")


class LinearizeBatchNorm(GraphPass):
    name = "bn_linear"

    def __init__(self, channel_last=False):
        self.channel_last = channel_last

    def plan(self, view):
        raise NotImplementedError("LinearizeBatchNorm is not implemented yet")
