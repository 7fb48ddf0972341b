"""Channel-last <-> channel-first conversion: one pass, parametrised by direction.

Every variable of the new graph holds its original counterpart in some layout ``p`` (a
permutation of axes, :mod:`.layout_math`): ``new = transpose(original, p)``. ``plan`` walks
the original graph once and asks each function's rule (:mod:`.layout_table`) what it needs:

- the listed inputs are replaced by new variables in the target layout (channel axis 1
  moved last, or the last axis moved to 1 for :class:`ToChannelFirst`);
- layout-deciding functions (convolutions, pooling...) flip their ``channel_last`` flag,
  their inputs are brought to the target layout and their weights transposed
  (``(O, I/g, K...) <-> (O, K..., I/g)``);
- layout-agnostic functions keep whatever layout their input has; adjustable ones get their
  axis arguments / operands rewritten; anything else sees the original layout through
  inserted transposes, so no function ever reads a layout it does not expect.

``rewrite`` then builds each decision. Bringing a variable to a layout inserts one
``Transpose`` (shared by all readers needing that layout). A parameter is transposed into a
new parameter instead (owned by the result; the original is never touched), except when
only size-1 axes move (BN statistics ``(1, C, 1, 1) -> (1, 1, 1, C)``, 1x1 kernels): that is
a reshaped view sharing the original's memory, just as parameters a conversion leaves alone
(biases) are shared. Both kinds are listed in ``Rewrite.new_parameters``.

Outputs come back in their original layout by default (``restore_outputs=True``): a
spatial output gets one final transpose, non-spatial ones (logits) need none, so the
converted graph is compared with the original as is, only the inputs are fed moved
(``np.moveaxis(x, 1, -1)``). It is also what makes every round trip exact: a graph output
that the user had already transposed to NHWC could not be told apart from a channel-last
spatial output on the way back. ``restore_outputs=False`` leaves each output in the layout
it is computed in (channel-last spatial outputs, no final transposes), and
:meth:`LayoutPass.output_layouts` tells which layout that is.
"""
import nnabla as nn

from . import layout_math as lm
from .graph_view import GraphView, parameter_source
from .layout_rules import Decides, Direction
from .layout_table import rule_for
from .rewrite import Event, GraphPass

__all__ = ["LayoutPass", "ToChannelLast", "ToChannelFirst"]


class _Plan:
    """One run's decisions plus the variables built so far, per layout."""

    def __init__(self, direction, inputs, replacements, perms, decisions, restore):
        self.d, self.inputs, self.replacements = direction, inputs, replacements
        self.perms, self.decisions, self.restore = perms, decisions, restore
        self.held = {}  # original variable -> {layout: new variable}
        self.mapped = {}  # (original variable, OperandMap key) -> new variable
        self.inserted = 0  # transposes inserted for the function being rebuilt

    def perm_of(self, v):
        return self.perms.get(v) or lm.identity(len(v.shape))

    def _held(self, b, v):
        if v not in self.held:
            self.held[v] = {self.perm_of(v): b.new(v)}
        return self.held[v]

    def bring(self, b, v, need, graph_op=False):
        """The new graph's ``v`` in layout ``need`` (a permutation or an OperandMap)."""
        if isinstance(need, lm.OperandMap):
            return self._mapped(b, v, need, graph_op)
        held = self._held(b, v)
        if need not in held:
            if b.view.is_parameter(v) and v.parent is None:
                held[need] = self._parameter(b, v, lm.OperandMap(perm=need))
            else:
                have, var = next(iter(held.items()))
                held[need] = b.call("Transpose", [var], {"axes": list(lm.relayout_axes(have, need))})[0]
                self.inserted += 1
        return held[need]

    def _parameter(self, b, v, m):
        """A parameter in a new layout. When only size-1 axes move (statistics, per-channel
        terms, 1x1 kernels) it is a reshaped view of the same memory, shared like the
        parameters a conversion leaves alone; otherwise a new parameter with moved data."""
        if m.moves_data(v.shape):
            return b.parameter(v, m.apply(v.d), self.d.suffix)
        view = v.reshape(m.shape_of(v.shape), unlink=True)
        view.need_grad = v.need_grad
        return b.adopt(view, v, self.d.suffix)  # named, so later passes know it is a parameter

    def _mapped(self, b, v, m, graph_op):
        if m.is_identity():
            return self.bring(b, v, lm.identity(len(v.shape)))
        key = (v, m.key())
        if key not in self.mapped:
            if b.view.is_parameter(v) and v.parent is None and not graph_op:
                self.mapped[key] = self._parameter(b, v, m)
            elif not graph_op and parameter_source(v) is not None:
                # a parameter seen through a Reshape (a weight stored flat): its values are known,
                # so it is moved as data like any parameter, not by graph functions at every run
                source = parameter_source(v)
                self.mapped[key] = b.parameter(source, m.apply(source.d.reshape(v.shape)), self.d.suffix)
            else:
                var = self.bring(b, v, lm.identity(len(v.shape)))
                if m.pre is not None:
                    var = b.call("Reshape", [var], {"shape": list(m.pre), "inplace": False})[0]
                if m.perm is not None:
                    var = b.call("Transpose", [var], {"axes": list(m.perm)})[0]
                if m.post is not None:
                    var = b.call("Reshape", [var], {"shape": list(m.post), "inplace": False})[0]
                self.mapped[key] = var
        return self.mapped[key]


class LayoutPass(GraphPass):
    """Convert a graph to channel-last (``to_last=True``) or channel-first.

    Args:
        inputs: graph inputs to convert (each ``(N, C, spatial...)``, or ``(N, spatial..., C)``
            going to channel-first); the caller then feeds the new variables, which start
            with the data of the original inputs moved to the target layout.
        replacements: optional existing variables (already in the target layout) to use
            instead of creating the new inputs.
        restore_outputs: transpose outputs back to their original layout (default).
    """

    def __init__(self, inputs, replacements=None, to_last=True, restore_outputs=True):
        self.to_last, self.restore_outputs = bool(to_last), bool(restore_outputs)
        self.name = "channel_last" if self.to_last else "channel_first"
        self.inputs = [inputs] if isinstance(inputs, nn.Variable) else list(inputs)
        self.replacements = None if replacements is None else list(replacements)
        for i, x in enumerate(self.inputs + (self.replacements or [])):
            if not isinstance(x, nn.Variable):
                raise TypeError("{}: input {} is a {}, not an nnabla.Variable".format(
                    self.name, i, type(x).__name__))

    # --- plan ------------------------------------------------------------------------
    def _check_inputs(self, view, d):
        leaves = set(view.inputs)
        for i, x in enumerate(self.inputs):
            if x not in leaves:
                what = ("a parameter" if view.is_parameter(x) else
                        "computed by {}".format(x.parent.info.type_name) if x.parent is not None
                        else "not used by the graph")
                raise ValueError("{}: inputs[{}] (shape {}) is not an input of the graph ({})".format(
                    self.name, i, tuple(x.shape), what))
            if len(x.shape) < 3:
                raise ValueError("{}: inputs[{}] has shape {}; a {} input needs a batch, a channel "
                                 "and at least one spatial axis".format(self.name, i, tuple(x.shape), d.word))
            if self.inputs.index(x) != i:
                raise ValueError("{}: inputs[{}] is listed twice".format(self.name, i))
        if self.replacements is not None:
            if len(self.replacements) != len(self.inputs):
                raise ValueError("{}: {} replacement inputs for {} inputs".format(
                    self.name, len(self.replacements), len(self.inputs)))
            for i, (x, r) in enumerate(zip(self.inputs, self.replacements)):
                want = self._target_shape(x, d)
                if tuple(r.shape) != want:
                    raise ValueError("{}: replacement input {} has shape {}, expected {} (inputs[{}] "
                                     "{} in {} layout)".format(self.name, i, tuple(r.shape), want, i,
                                                               tuple(x.shape), d.word))

    @staticmethod
    def _target_shape(x, d):
        return tuple(x.shape[a] for a in d.flip_perm(len(x.shape), 1))

    def plan(self, view):
        d = Direction(self.to_last, view)
        self._check_inputs(view, d)
        perms = {x: d.flip_perm(len(x.shape), 1) for x in self.inputs}
        decisions = {}
        for f in view.functions:
            in_perms = [perms.get(v) or lm.identity(len(v.shape)) for v in f.inputs]
            rule = rule_for(f.info.type_name)
            if not isinstance(rule, Decides) and all(lm.is_identity(p) for p in in_perms):
                continue  # original layout in, original layout out: copy as is
            dec = rule.infer(f, in_perms, d)
            decisions[f] = dec
            for o, p in zip(f.outputs, dec.outs):
                if not lm.is_identity(p):
                    perms[o] = p
        return _Plan(d, self.inputs, self.replacements, perms, decisions, self.restore_outputs)

    def input_map(self, view, b, plan):
        news = plan.replacements or [self._moved_input(x, plan.d) for x in plan.inputs]
        return dict(zip(plan.inputs, news))

    def _moved_input(self, x, d):
        """A new input in the target layout holding the data ``x`` holds now, if it holds any
        (as NNabla's modifiers do, so a graph converted after ``x.d = batch`` runs as is)."""
        new = nn.Variable(self._target_shape(x, d), need_grad=x.need_grad)
        if x.data.modification_count:  # never allocate data for an input that has none
            new.d = x.data.get_data("r").transpose(d.flip_perm(len(x.shape), 1))
        return new

    # --- rewrite ---------------------------------------------------------------------
    def rewrite(self, f, inputs, b, plan):
        dec = plan.decisions.get(f)
        if dec is None:
            return None
        plan.inserted = 0
        sources = dec.sources or f.inputs
        new_inputs = [plan.bring(b, v, need, i in dec.graph_ops)
                      for i, (v, need) in enumerate(zip(sources, dec.needs))]
        if dec.type_name is None:
            outs = [new_inputs[0]]
        else:
            outs = b.call(dec.type_name, new_inputs, dec.args, len(f.outputs))
        if dec.action == "fenced":
            moved = sum(1 for v, need in zip(sources, dec.needs) if need != plan.perm_of(v))
            if moved:
                b.note(f, "fenced", "{} ({} inputs transposed back, {} new transposes)".format(
                    dec.reason, moved, plan.inserted))
        elif dec.action and dec.action != "fenced":
            b.note(f, dec.action, dec.reason)
        for k, (o, new, p) in enumerate(zip(f.outputs, outs, dec.outs)):
            plan.held[o] = {p: new}
            if b.view.is_output(o) and not lm.is_identity(p):
                if plan.restore:
                    outs[k] = plan.bring(b, o, lm.identity(len(p)))
                    b.note(f, "restored", "output transposed back to its original layout")
                else:
                    b.note(f, "layout", "output is transpose(original, {}) ({})".format(p, plan.d.word))
        return outs

    def finish_outputs(self, view, b, plan, outputs):
        # A listed input that is also a graph output is computed by no function, so
        # rewrite() never restored it: do it here.
        if not plan.restore:
            return outputs
        restored = []
        for o, new in zip(view.outputs, outputs):
            if o.parent is None and not lm.is_identity(plan.perm_of(o)):
                new = plan.bring(b, o, lm.identity(len(o.shape)))
                b.events.append(Event("graph input {}".format(tuple(o.shape)), "restored",
                                      "an input passed through as an output, transposed back"))
            restored.append(new)
        return restored

    def output_layouts(self, outputs, params=None):
        """The layout of each output of the converted graph, as ``transpose`` axes of the
        original output (identity: unchanged), without converting anything."""
        view = GraphView(outputs, params)
        plan = self.plan(view)
        return [lm.identity(len(o.shape)) if self.restore_outputs else plan.perm_of(o)
                for o in view.outputs]


class ToChannelLast(LayoutPass):
    """NC... -> N...C. ``inputs_cl``: existing channel-last variables to use as the inputs."""

    def __init__(self, inputs, inputs_cl=None, restore_outputs=True):
        super().__init__(inputs, inputs_cl, to_last=True, restore_outputs=restore_outputs)


class ToChannelFirst(LayoutPass):
    """N...C -> NC..., the way back. ``inputs_cf``: existing channel-first variables to use."""

    def __init__(self, inputs, inputs_cf=None, restore_outputs=True):
        super().__init__(inputs, inputs_cf, to_last=False, restore_outputs=restore_outputs)
