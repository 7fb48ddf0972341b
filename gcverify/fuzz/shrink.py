"""Shrink a failing recipe to a small one that fails the same way (greedy delta debugging).

``still_fails(recipe)`` is the predicate: the recipe builds and the check fails with the
same failure kind. Two stages:

1. size search: when the recipe came from ``generate(seed, size)``, the smallest size that
   still fails (the generator replays the same first draws at smaller sizes);
2. edits, biggest first, each kept only if the predicate still holds, until a full round
   changes nothing or the budget of checks is spent: drop an output; remove a node by
   sending its readers to one of its inputs; stop sharing parameters; turn a boolean option
   off; make an ``out`` width or a multiplier smaller; make an input smaller (batch,
   channels, spatial size). Invalid candidates (shapes no longer fit) fail to build and are
   simply not taken.
"""
from .generator import generate
from .harness import check
from .recipe import InvalidRecipe

__all__ = ["shrink", "failure_predicate", "recipe_edits"]


def failure_predicate(target, kind):
    """True for recipes on which ``target`` fails with this ``kind``."""
    def still_fails(recipe):
        try:
            model = recipe.build()
        except (InvalidRecipe, RuntimeError, ValueError, AssertionError):
            return False
        outcome = check(target, model)
        return not outcome.ok and outcome.kind == kind
    return still_fails


def _node_edits(recipe, i, node):
    k = len(recipe.inputs)
    for src in dict.fromkeys(node["src"]):  # remove the node: its readers read this input
        yield recipe.pruned({k + i: src})
    if node.get("share") is not None:
        yield _with_node(recipe, i, share=None)
    for key, value in sorted(node["args"].items()):
        if value is True:
            yield _with_node(recipe, i, args=dict(node["args"], **{key: False}))
        elif key in ("out", "multiplier", "divisor") and isinstance(value, int) and value > 1:
            smaller = value // 2 if key == "out" else 1
            yield _with_node(recipe, i, args=dict(node["args"], **{key: smaller}))


def _with_node(recipe, i, **changes):
    nodes = [dict(n) for n in recipe.nodes]
    nodes[i].update(changes)
    return recipe.replace(nodes=nodes)


def _input_edits(recipe):
    for j, shape in enumerate(recipe.inputs):
        for axis, size in enumerate(shape):
            if size > 1:
                smaller = list(shape)
                smaller[axis] = 1 if axis == 0 else size - 1
                inputs = [list(s) for s in recipe.inputs]
                inputs[j] = smaller
                yield recipe.replace(inputs=inputs)


def recipe_edits(recipe):
    """Candidate smaller recipes, biggest reductions first."""
    if len(recipe.outputs) > 1:
        for j in range(len(recipe.outputs)):
            yield recipe.replace(outputs=recipe.outputs[:j] + recipe.outputs[j + 1:]).pruned()
    for i in reversed(range(len(recipe.nodes))):
        yield from _node_edits(recipe, i, recipe.nodes[i])
    yield from _input_edits(recipe)


def _smallest_size(recipe, still_fails, options, budget):
    seed, size = recipe.origin.get("seed"), recipe.origin.get("size")
    if seed is None or size is None:
        return recipe, budget
    for smaller in range(1, size):
        if budget <= 0:
            break
        budget -= 1
        candidate = generate(seed, smaller, options)
        if len(candidate) < len(recipe) and still_fails(candidate):
            return candidate, budget
    return recipe, budget


def shrink(recipe, still_fails, options=None, budget=400):
    """The smallest recipe found that still fails; ``budget`` bounds the checks run."""
    current, budget = _smallest_size(recipe, still_fails, options, budget)
    progress = True
    while progress and budget > 0:
        progress = False
        for candidate in recipe_edits(current):
            if budget <= 0:
                break
            budget -= 1
            if still_fails(candidate):
                current, progress = candidate, True
                break
    return current
