"""Fixtures for the converter tests: small graphs with seeded random parameters and data."""
import nnabla as nn
import numpy as np
import pytest

from converters.graph_view import GraphView
from converters.rewrite import run_passes
from gcverify.builtin.peers import run_nnabla
from gcverify.core.model import build_privately, seeded_inputs
from gcverify.verify.snapshot import Snapshot
from gcverify.zoo.seeding import randomize_parameters


class Net:
    """``build(*inputs)`` in a private parameter scope, random weights and BN statistics
    (``randomize_parameters``), random input data, and a snapshot of the original."""

    def __init__(self, build, shapes, seed=0):
        self.inputs = [nn.Variable(s) for s in shapes]
        out, self.params = build_privately(build, *self.inputs)
        self.outputs = [out] if isinstance(out, nn.Variable) else list(out)
        randomize_parameters(self.outputs, self.params, seed=seed)
        self.data = seeded_inputs(shapes, seed + 1)
        for x, d in zip(self.inputs, self.data):
            x.d = d
        self.resnapshot()
        self.structure = self._structure()

    def resnapshot(self):
        """Take the parameter values as they are now as the original's (after a test set them)."""
        self.snapshot = {k: v.d.copy() for k, v in self.params.items()}
        self.before = Snapshot.take(self.outputs, self.params, self.inputs)

    def _structure(self):
        """The original graph as data: each function's type, args and input shapes."""
        return [(f.info.type_name, f.info.args, [v.shape for v in f.inputs])
                for f in GraphView(self.outputs, {}).functions]

    def forward(self, outputs=None, inputs=None):
        """Values of ``outputs`` (default: the original's) fed with the seeded data."""
        for x, d in zip(inputs or self.inputs, self.data):
            x.d = d
        outputs = self.outputs if outputs is None else list(outputs)
        nn.forward_all(outputs)
        return [o.d.copy() for o in outputs]

    def convert(self, *passes):
        """``run_passes`` on the original (a Rewrite), which must stay as it was."""
        result = run_passes(list(passes), self.outputs, params=self.params)
        self.assert_unchanged()
        return result

    def changes(self):
        """What changed in the original since the snapshot (a list of Snapshot changes)."""
        return self.before.changes(self.outputs, self.params)

    def assert_unchanged(self):
        changes = self.changes()
        assert not changes, changes
        assert self._structure() == self.structure

    def assert_same(self, result, rtol=1e-4, atol=1e-4):
        for got, want in zip(self.forward(result.outputs), self.forward()):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def histogram(outputs):
    return dict(GraphView(outputs, {}).histogram())


@pytest.fixture
def net_of():
    """``net_of(build, *input_shapes, seed=0)`` -> a :class:`Net`."""
    return lambda build, *shapes, seed=0: Net(build, shapes, seed)


@pytest.fixture
def hist():
    """Function-type histogram of a graph (a dict)."""
    return histogram


@pytest.fixture
def nnabla_peer():
    """``nnabla_peer(net, make)`` runs NNabla 1.39's own GraphConverter with the modifiers
    ``make(NGC)`` builds on ``net``, in a throwaway parameter scope; returns the values of its
    outputs (an exception it raises propagates). Parameter values it overwrites are restored."""
    def run(net, make):
        values = {k: v.d.copy() for k, v in net.params.items()}
        try:
            outputs, _, _ = run_nnabla(net.outputs, net.params, lambda NGC, done: make(NGC))
            return net.forward(outputs)
        finally:
            for k, v in net.params.items():
                v.d = values[k]
    return run
