"""Layout passes (to be implemented: issue 4)."""
from .rewrite import GraphPass


class ToChannelLast(GraphPass):
    name = "channel_last"

    def __init__(self, inputs, inputs_cl=None):
        self.inputs, self.inputs_cl = list(inputs), inputs_cl

    def plan(self, view):
        raise NotImplementedError("ToChannelLast is not implemented yet")


class ToChannelFirst(GraphPass):
    name = "channel_first"

    def __init__(self, inputs, inputs_cf=None):
        self.inputs, self.inputs_cf = list(inputs), inputs_cf

    def plan(self, view):
        raise NotImplementedError("ToChannelFirst is not implemented yet")
