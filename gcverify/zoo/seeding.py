"""Seeded, non-trivial parameters for any graph, so that folding errors cannot hide.

Weights get He-style normals; every BatchNormalization gets random running mean/var, gamma
and beta (NNabla's own initial values, mean 0 / var 1 / gamma 1 / beta 0, would make a
wrong fold look right). Roles come from the graph, so user graphs work too.
"""
import numpy as np

from converters.graph_view import GraphView

from ..core.expectations import INNER_PRODUCT


def _bn_roles(args):
    roles = []
    if not args.get("no_bias", False):
        roles.append("beta")
    if not args.get("no_scale", False):
        roles.append("gamma")
    return roles + ["mean", "var"]


def randomize_parameters(outputs, params=None, seed=0):
    """Fill every parameter of the graph with seeded values; returns how many were set."""
    rng = np.random.RandomState(seed)
    view = GraphView(outputs, params)
    done = set()

    def fill(v, values):
        if v in done:  # shared weights keep the first draw
            return
        v.d = values.astype(np.float32).reshape(v.shape)
        done.add(v)

    for f in view.functions:
        kind, args = f.info.type_name, f.info.args
        if kind in INNER_PRODUCT:
            w = f.inputs[1]
            fan_in = int(np.prod(w.shape[1:])) if kind != "Affine" else int(np.prod(w.shape[:-1]))
            fill(w, rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), w.shape))
            if len(f.inputs) > 2:
                fill(f.inputs[2], rng.normal(0.0, 0.1, f.inputs[2].shape))
        elif kind == "BatchNormalization":
            for role, v in zip(_bn_roles(args), f.inputs[1:]):
                draw = {"beta": lambda s: rng.normal(0.0, 0.2, s),
                        "gamma": lambda s: rng.uniform(0.5, 1.5, s),
                        "mean": lambda s: rng.normal(0.0, 0.2, s),
                        "var": lambda s: rng.uniform(0.5, 2.0, s)}[role]
                fill(v, draw(v.shape))
    return len(done)
