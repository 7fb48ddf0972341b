"""A faithful, independent copy of a model: what every case converts and compares against.

The copy computes exactly what the model computes: its functions are rebuilt with the same
arguments (on the case's device), and every leaf keeps its role and its contents:

- the model's ``inputs`` become new variables of the same shape and need_grad (they are fed
  the model's ``input_data`` at every run);
- every other leaf -- parameters, and constants the graph holds such as an attention mask
  made with ``nn.Variable.from_numpy_array``, an LSTM zero state or a position table -- is
  copied with its values, shape, dtype and need_grad.

So a converter that mutates what it is given can never spoil the cached model or the next
case, and the copy's fresh forward is the reference the conversion is judged against.

Random functions (every function with a ``seed``: Randn in NoisyNet layers, Dropout,
random augmentation) drawing with ``seed=-1`` would draw other numbers at every forward of
every copy; with ``fix_seeds`` (the default) the copy gives the ``k``-th of them (in
topological order) the seed :func:`fixed_seed` ``(k)``, so every copy of a model draws the
same numbers at its ``n``-th forward, and so does a converted graph that keeps them.
"""
import nnabla as nn

from converters.rewrite import GraphPass, run_passes

from ..core.model import Model

__all__ = ["copy_model", "copy_leaf", "fixed_seed", "unseeded_random_functions"]


def fixed_seed(k):
    """The seed the copy gives the ``k``-th random function drawing with ``seed=-1``."""
    return 7919 * (k + 1) % (2 ** 31 - 1)


def unseeded_random_functions(view):
    """Functions of the graph that draw new random numbers at every forward (``seed=-1``)."""
    return [f for f in view.functions if f.info.args.get("seed", 0) == -1]


def copy_leaf(v):
    """A new leaf variable holding a copy of ``v``'s values (dtype kept), same need_grad."""
    return nn.Variable.from_numpy_array(v.d.copy(), need_grad=v.need_grad)


class _CopyLeaves(GraphPass):
    name = "faithful_copy"

    def __init__(self, inputs, fix_seeds):
        self.inputs, self.fix_seeds = set(inputs), fix_seeds

    def plan(self, view):
        if not self.fix_seeds:
            return {}
        return {f: fixed_seed(k) for k, f in enumerate(unseeded_random_functions(view))}

    def input_map(self, view, b, plan):
        leaves = list(view.inputs) + list(view.parameters)
        return {v: nn.Variable(v.shape, need_grad=v.need_grad) if v in self.inputs else copy_leaf(v)
                for v in leaves}

    def rewrite(self, f, inputs, b, plan):
        if f in plan:
            return b.call(f.info.type_name, inputs, dict(f.info.args, seed=plan[f]), len(f.outputs))
        return None


def copy_model(model, context=None, fix_seeds=True):
    """A fresh, independent copy of ``model`` whose functions run on ``context``."""
    result = run_passes([_CopyLeaves(model.inputs, fix_seeds)], list(model.outputs), params=model.params,
                        context=context)
    leaves = result.input_map
    params = {name: leaves.get(v) or copy_leaf(v) for name, v in model.params.items()}
    inputs = [leaves.get(x) or nn.Variable(x.shape, need_grad=x.need_grad) for x in model.inputs]
    return Model(model.name, inputs, list(result.outputs), list(model.input_data), params,
                 dict(model.tolerance), model.description, dict(model.accept_kept))
