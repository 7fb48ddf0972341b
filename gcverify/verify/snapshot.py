"""The one snapshot of "what a conversion must leave alone", taken before it runs.

:meth:`Snapshot.take` records, for the graph computing ``outputs``:

- its structure: every function object in topological order with its type, arguments,
  wiring (which variables it reads and writes) and output shapes, and the output variables;
- every leaf it reads: parameters and constants by value, shape, dtype and need_grad, and
  the graph inputs by shape and need_grad (their values are whatever is fed);
- the parameter dictionary that names them (same names, same variable objects);
- NNabla's global parameter scope: every name, the variable object and its values.

:meth:`Snapshot.changes` lists what differs now, each a :class:`Change` naming the culprit
(a parameter by name, a constant by shape and reader); :meth:`Snapshot.restore` puts the
recorded leaf values back (a BatchNormalization with ``batch_stat=True`` updates its
running statistics whenever it runs). ``Snapshot.take()`` with no graph watches only the
global scope (our tests' autouse guard).
"""
from collections import namedtuple

import numpy as np

from converters.graph_view import GraphView, all_parameters

__all__ = ["Snapshot", "Change", "graph_signature", "describe_leaf", "CHANGE_KINDS"]

Change = namedtuple("Change", "kind message")
CHANGE_KINDS = ("changed-graph", "changed-params", "changed-constants", "changed-scope")


def graph_signature(view):
    """The graph's structure as plain data: per function (type, arguments, input ids,
    output ids, output shapes), variables numbered in order of first appearance."""
    ids = {}

    def vid(v):
        return ids.setdefault(v, len(ids))

    return tuple((f.info.type_name, repr(sorted(f.info.args.items())),
                  tuple(vid(v) for v in f.inputs), tuple(vid(v) for v in f.outputs),
                  tuple(tuple(v.shape) for v in f.outputs)) for f in view.functions)


def describe_leaf(view, v, inputs=()):
    """A parameter by its name; any other leaf (an input when in ``inputs``, else a
    constant) by its shape and its first reader."""
    name = view.param_name(v)
    if name:
        return "parameter {!r}".format(name)
    role = "parameter" if view.is_parameter(v) else "input" if v in set(inputs) else "constant"
    readers = view.consumers(v)
    where = " read by {}".format(view.describe(readers[0][0])) if readers else ""
    return "{} of shape {}{}".format(role, tuple(v.shape), where)


class Snapshot:
    def __init__(self, view, outputs, names, leaves, inputs, scope):
        self.view, self.outputs, self.names = view, outputs, names
        self.leaves, self.inputs, self.scope = leaves, inputs, scope
        self.signature = graph_signature(view) if view is not None else ()
        self.functions = view.functions if view is not None else ()

    @classmethod
    def take(cls, outputs=None, params=None, inputs=(), scope=True):
        """Snapshot the graph of ``outputs`` (parameters named by ``params``; ``inputs`` are
        the leaves a user feeds, every other leaf is a parameter or a constant) and, with
        ``scope``, NNabla's global parameter scope."""
        view = GraphView(outputs, params or {}) if outputs is not None else None
        names, inputs, leaves = dict(params or {}), set(inputs), {}
        if view is not None:
            owned = list(view.parameters) + [v for v in view.inputs if v not in view.parameters]
            owned += [v for v in names.values() if v not in set(owned)]
            for v in owned:
                values = None if v in inputs else v.d.copy()
                leaves[v] = (values, tuple(v.shape), v.need_grad)
        watched = {k: (v, v.d.copy()) for k, v in all_parameters().items()} if scope else None
        return cls(view, tuple(view.outputs) if view else (), names, leaves, inputs, watched)

    @property
    def runs_mutate(self):
        """True when running the graph writes its own leaves (BN in training mode)."""
        return any(f.info.type_name == "BatchNormalization" and f.info.args.get("batch_stat")
                   for f in self.functions)

    def restore(self):
        for v, (values, _, _) in self.leaves.items():
            if values is not None:
                v.d = values

    def changes(self, outputs=None, params=None):
        """What changed since the snapshot, as a list of :class:`Change` (empty: nothing)."""
        found = []
        if self.view is not None:
            found += self._graph_changes(outputs, params)
            if not found:
                found += self._leaf_changes()
        if self.scope is not None:
            found += self._scope_changes()
        return found

    def _graph_changes(self, outputs, params):
        outputs = self.outputs if outputs is None else tuple(outputs)
        params = self.names if params is None else dict(params)
        if outputs != self.outputs:
            return [Change("changed-graph", "the original's outputs were replaced")]
        if set(params) != set(self.names) or any(params[k] is not v for k, v in self.names.items()):
            gone = sorted(set(self.names) - set(params))
            return [Change("changed-graph", "the original's parameter dictionary was changed{}".format(
                ": {} gone".format(", ".join(gone[:5])) if gone else ""))]
        view = GraphView(outputs, params)
        if view.functions != self.functions or graph_signature(view) != self.signature:
            before, after = self.view.histogram(), view.histogram()
            what = "histogram {} -> {}".format(dict(before - after), dict(after - before)) \
                if before != after else "rewired (same functions, other wiring or arguments)"
            return [Change("changed-graph", "the original graph changed: " + what)]
        return []

    def _leaf_changes(self):
        found = []
        for v, (values, shape, need_grad) in self.leaves.items():
            what = describe_leaf(self.view, v, self.inputs)
            kind = {"constant": "changed-constants", "input": "changed-graph"}.get(what.split()[0], "changed-params")
            if tuple(v.shape) != shape or v.need_grad != need_grad:
                found.append(Change(kind, "{}: shape/need_grad changed ({}, {}) -> ({}, {})".format(
                    what, shape, need_grad, tuple(v.shape), v.need_grad)))
            elif values is not None:
                now = v.d
                if now.dtype != values.dtype:
                    found.append(Change(kind, "{}: dtype changed {} -> {}".format(what, values.dtype, now.dtype)))
                elif not np.array_equal(now, values, equal_nan=np.issubdtype(now.dtype, np.floating)):
                    change = np.abs(now.astype(np.float64) - values.astype(np.float64))
                    found.append(Change(kind, "{} changed values (max change {:.3g})".format(
                        what, float(np.nanmax(change)) if change.size else 0.0)))
        return found

    def _scope_changes(self):
        now = all_parameters()
        added, gone = sorted(set(now) - set(self.scope)), sorted(set(self.scope) - set(now))
        found = ["{} parameter(s) {} the global scope: {}".format(len(names), what, ", ".join(names[:5]))
                 for what, names in (("added to", added), ("removed from", gone)) if names]
        moved = [k for k, (v, values) in self.scope.items() if k in now and (
            now[k] is not v or not np.array_equal(now[k].d, values))]
        if moved:
            found.append("{} parameter(s) replaced or changed in the global scope: {}".format(
                len(moved), ", ".join(moved[:5])))
        return [Change("changed-scope", m) for m in found]
