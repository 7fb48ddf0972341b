"""A fuzz graph as plain data (a *recipe*) and how to build it into a :class:`gcverify.Model`.

A recipe is JSON: the input shapes, a list of nodes, the output value ids and two seeds.
Value ids number the inputs ``0..k-1`` and then node ``i``'s output ``k+i``. A node is
``{"op": type, "src": [value ids], "args": {...}, "share": j}``; ``share`` names an earlier
node whose parameters it reuses (a shared weight), or is None. Since the recipe holds every
argument, replaying it needs no generator: a saved reproducer stays valid when the generator
changes. Shapes follow from the recipe through the op table's formulas, so a candidate can
be rejected before NNabla builds anything.

Parameters live in a private ``{name: Variable}`` dictionary owned by the model (names like
``n3/conv/W``), never in NNabla's parameter scopes, and get seeded values from
:func:`gcverify.zoo.init.randomize_parameters`.
"""
import copy
from collections import OrderedDict
from dataclasses import dataclass, field

import nnabla as nn

from ..core.model import Model, seeded_inputs
from ..zoo.seeding import randomize_parameters
from .ops import OPS, InvalidRecipe

__all__ = ["Recipe", "InvalidRecipe", "Assembler"]


def _node_shape(node, shapes):
    op = OPS.get(node["op"])
    if op is None:
        raise InvalidRecipe("unknown op {!r}".format(node["op"]))
    ins = [shapes[i] for i in node["src"]]
    if op.arity == 1:
        if len(ins) != 1:
            raise InvalidRecipe("{} takes one input".format(node["op"]))
        return tuple(op.out_shape(node["args"], ins[0]))
    if len(ins) < 2 or any(len(s) != len(ins[0]) for s in ins):
        raise InvalidRecipe("{} needs inputs of one rank".format(node["op"]))
    axis = node["args"].get("axis")
    for s in ins[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(s, ins[0])) if i != axis):
            raise InvalidRecipe("{} inputs have shapes {}".format(node["op"], ins))
    return tuple(op.out_shape(node["args"], ins))


class Assembler:
    """Builds the NNabla graph node by node. With ``materialize=False`` it only tracks shapes,
    uses and sharing, which is how the generator grows a recipe without building anything."""

    def __init__(self, input_shapes, materialize=True):
        self.materialize = materialize
        self.n_inputs = len(input_shapes)
        self.inputs = [nn.Variable(tuple(s)) for s in input_shapes] if materialize else []
        self.values = list(self.inputs) if materialize else [None] * len(input_shapes)
        self.shapes = [tuple(s) for s in input_shapes]
        self.uses = [0] * self.n_inputs
        self.nodes = []
        self.params = OrderedDict()

    def param_specs(self, node, owner):
        return [("n{}/{}".format(owner, suffix), tuple(shape))
                for suffix, shape in OPS[node["op"]].params(node["args"], self.shapes[node["src"][0]])]

    def shape_of(self, node):
        """The output shape ``node`` would have, or raise InvalidRecipe."""
        if any(not 0 <= i < len(self.values) for i in node["src"]):
            raise InvalidRecipe("node reads a value that does not exist yet: {}".format(node))
        shape = _node_shape(node, self.shapes)
        if min(shape) < 1:
            raise InvalidRecipe("{} gives an empty shape {}".format(node["op"], shape))
        share = node.get("share")
        if share is not None:
            if not 0 <= share < len(self.nodes) or self.nodes[share]["op"] != node["op"]:
                raise InvalidRecipe("node shares parameters with node {} of another kind".format(share))
            mine = [s for _, s in self.param_specs(node, share)]
            theirs = [s for _, s in self.param_specs(self.nodes[share], share)]
            if mine != theirs:
                raise InvalidRecipe("shared parameters need equal shapes: {} vs {}".format(mine, theirs))
        return shape

    def apply(self, node):
        shape = self.shape_of(node)
        if not self.materialize:
            return self._record(node, None, shape)
        index = len(self.nodes)
        owner = index if node.get("share") is None else node["share"]
        params = []
        for name, s in self.param_specs(node, owner):
            if name not in self.params:
                self.params[name] = nn.Variable(s, need_grad=True)
            params.append(self.params[name])
        op = OPS[node["op"]]
        srcs = [self.values[i] for i in node["src"]]
        y = op.build(srcs[0] if op.arity == 1 else srcs, node["args"], params)
        if tuple(y.shape) != shape:  # the op table's formula disagrees with NNabla
            raise AssertionError("{} built shape {} but the formula says {}".format(
                node["op"], y.shape, shape))
        return self._record(node, y, shape)

    def _record(self, node, y, shape):
        for i in node["src"]:
            self.uses[i] += 1
        self.nodes.append(node)
        self.values.append(y)
        self.shapes.append(shape)
        self.uses.append(0)
        return len(self.values) - 1


@dataclass
class Recipe:
    inputs: list
    nodes: list
    outputs: list
    param_seed: int = 0
    data_seed: int = 0
    origin: dict = field(default_factory=dict)  # where it came from, e.g. {"seed": 7, "size": 9}

    # --- data ------------------------------------------------------------------------
    def to_dict(self):
        return {"inputs": [list(s) for s in self.inputs], "nodes": copy.deepcopy(self.nodes),
                "outputs": list(self.outputs), "param_seed": self.param_seed,
                "data_seed": self.data_seed, "origin": dict(self.origin)}

    @classmethod
    def from_dict(cls, d):
        d = copy.deepcopy(d)
        return cls([tuple(s) for s in d["inputs"]], d["nodes"], list(d["outputs"]),
                   d.get("param_seed", 0), d.get("data_seed", 0), d.get("origin", {}))

    def __len__(self):
        return len(self.nodes)

    def histogram(self):
        counts = {}
        for n in self.nodes:
            counts[n["op"]] = counts.get(n["op"], 0) + 1
        return counts

    def shapes(self):
        """Every value's shape, from the op table's formulas (raises InvalidRecipe)."""
        shapes = [tuple(s) for s in self.inputs]
        for node in self.nodes:
            if any(not 0 <= i < len(shapes) for i in node["src"]):
                raise InvalidRecipe("node reads a later value: {}".format(node))
            shapes.append(_node_shape(node, shapes))
        return shapes

    # --- building --------------------------------------------------------------------
    def build(self, name=None):
        """The graph as a Model with seeded parameters and input data."""
        if not self.outputs:
            raise InvalidRecipe("a recipe needs at least one output")
        asm = Assembler(self.inputs)
        for node in self.nodes:
            asm.apply(node)
        unused = [i for i, n in enumerate(asm.uses[:len(self.inputs)]) if n == 0]
        if unused:
            raise InvalidRecipe("inputs {} are not used (prune the recipe)".format(unused))
        outputs = [asm.values[i] for i in self.outputs]
        randomize_parameters(outputs, asm.params, seed=self.param_seed)
        data = seeded_inputs(self.inputs, self.data_seed)
        name = name or "fuzz-{}".format(self.origin.get("seed", "recipe"))
        return Model(name, asm.inputs, outputs, data, params=asm.params, description=self.describe())

    # --- editing (the shrinker's moves) ----------------------------------------------
    def pruned(self, redirect=None):
        """A copy without nodes that reach no output and inputs nobody reads.

        ``redirect`` maps value ids to replacements (applied to sources and outputs), which is
        how a node is removed: send its readers to one of its inputs, then prune.
        """
        redirect = dict(redirect or {})

        def final(v):
            seen = set()
            while v in redirect and v not in seen:
                seen.add(v)
                v = redirect[v]
            return v

        k = len(self.inputs)
        nodes = [dict(n, src=[final(v) for v in n["src"]]) for n in self.nodes]
        outputs = list(OrderedDict.fromkeys(final(v) for v in self.outputs))
        needed = set(outputs)
        for i in reversed(range(len(nodes))):
            if k + i in needed:
                needed.update(nodes[i]["src"])
        keep_inputs = [i for i in range(k) if i in needed]
        keep_nodes = [i for i in range(len(nodes)) if k + i in needed]
        new_id = {old: new for new, old in enumerate(keep_inputs)}
        new_id.update({k + old: len(keep_inputs) + new for new, old in enumerate(keep_nodes)})
        new_node = {old: new for new, old in enumerate(keep_nodes)}
        owner_of = {}  # old owner -> new index of the node that now owns those parameters
        out_nodes = []
        for old in keep_nodes:
            n = dict(nodes[old], src=[new_id[v] for v in nodes[old]["src"]])
            owner = n.get("share")
            if owner is not None:
                if owner in new_node:
                    n["share"] = new_node[owner]
                elif owner in owner_of:
                    n["share"] = owner_of[owner]
                else:  # the owner is gone: this node takes over its parameters
                    owner_of[owner] = new_node[old]
                    n["share"] = None
            out_nodes.append(n)
        return Recipe([self.inputs[i] for i in keep_inputs], out_nodes,
                      [new_id[v] for v in outputs], self.param_seed, self.data_seed, dict(self.origin))

    def replace(self, **changes):
        d = self.to_dict()
        d.update(changes)
        return Recipe.from_dict(d)

    # --- for people ------------------------------------------------------------------
    def describe(self):
        try:
            shapes = self.shapes()
        except InvalidRecipe:
            shapes = None
        k = len(self.inputs)
        lines = ["inputs: " + ", ".join("v{} {}".format(i, tuple(s)) for i, s in enumerate(self.inputs))]
        for i, n in enumerate(self.nodes):
            args = " ".join("{}={}".format(a, v) for a, v in sorted(n["args"].items()))
            share = "  [shares the parameters of v{}]".format(k + n["share"]) if n.get("share") is not None else ""
            shape = " -> {}".format(shapes[k + i]) if shapes else ""
            lines.append("v{} = {}({}) {}{}{}".format(k + i, n["op"], ", ".join("v{}".format(s) for s in n["src"]),
                                                     args, shape, share))
        lines.append("outputs: " + ", ".join("v{}".format(v) for v in self.outputs))
        return "\n".join(lines)
