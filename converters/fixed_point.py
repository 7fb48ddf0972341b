"""Fixed-point passes (to be implemented: issue 5)."""
from .rewrite import GraphPass


class FixedPointWeights(GraphPass):
    name = "fixed_point_weight"

    def __init__(self, **options):
        self.options = options

    def plan(self, view):
        raise NotImplementedError("FixedPointWeights is not implemented yet")


class FixedPointActivations(GraphPass):
    name = "fixed_point_activation"

    def __init__(self, **options):
        self.options = options

    def plan(self, view):
        raise NotImplementedError("FixedPointActivations is not implemented yet")
