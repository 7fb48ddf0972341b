"""Models from ``.nnp`` files, loaded with NNabla's own loader (``NnpLoader``).

A spec is ``path.nnp`` (the file's first network) or ``path.nnp::network`` (a named one).
The loader keeps the file's parameters in its own dictionary and publishes them into the
*current* parameter scope when a network is built; ``ModelSpec.build`` runs builders inside
a private scope, so loading never touches NNabla's global scope. Outputs are those the file's
executor for the network names, else the network's unconsumed variables. Inputs are the
graph's own leaf variables that are not parameters, fed with seeded uniform data in [-1, 1).
"""
import os
from functools import partial

import nnabla as nn

from converters.graph_view import GraphView

from ..core.model import Model, ModelSpec, seeded_inputs
from ..core.registry import UnknownModelError

__all__ = ["NnpLoadError", "nnp_spec", "nnp_resolver", "open_nnp", "load_nnp_model", "build_network",
           "build_named_network", "executor_network", "split_nnp_token", "SELECTOR"]

SELECTOR = "::"


class NnpLoadError(ValueError):
    """An ``.nnp`` file could not be read or does not hold the requested network."""


def split_nnp_token(token):
    """``"dir/x.nnp::net"`` -> ``("dir/x.nnp", "net")``; without a selector the network is None."""
    path, sep, network = token.partition(SELECTOR)
    return path, (network or None) if sep else None


def nnp_spec(token):
    """The ModelSpec of an ``.nnp`` path (optionally ``::network``); the model is named by ``token``."""
    path, network = split_nnp_token(token)
    if not os.path.isfile(path):
        raise UnknownModelError("no .nnp file at {!r}".format(path))
    description = "network {!r} of {}".format(network, path) if network else "first network of " + path
    return ModelSpec(token, partial(load_nnp_model, path, network, name=token), description)


def nnp_resolver(token):
    """For :class:`~gcverify.core.registry.ModelRegistry`: an ``.nnp`` token's spec, else None."""
    if token.endswith(".nnp") or ".nnp" + SELECTOR in token:
        return nnp_spec(token)
    return None


def open_nnp(path):
    """``(NnpLoader, network names)`` for ``path``; a clear NnpLoadError when it is no .nnp."""
    from nnabla.utils.nnp_graph import NnpLoader  # NNabla's loader pulls in protobuf: load lazily
    try:
        loader = NnpLoader(path)
    except Exception as e:  # zip, protobuf and h5 readers each raise their own types
        raise NnpLoadError("cannot read {!r} as an .nnp file ({}: {})".format(
            path, type(e).__name__, e)) from e
    names = loader.get_network_names()
    if not names:
        raise NnpLoadError("{!r} holds no network definition (is it an .nnp saved by NNabla?)".format(path))
    return loader, names


def executor_network(loader, names):
    """The network the file's first executor runs (what the file is for), else its first."""
    for executor in getattr(loader.g, "executors", {}).values():
        if executor.proto.network_name in names:
            return executor.proto.network_name
    return names[0]


def _declared_outputs(loader, network, net):
    """Outputs an executor of ``network`` names, which may be read elsewhere in the graph too
    (the network's own outputs are only its unconsumed variables); None without an executor."""
    for executor in getattr(loader.g, "executors", {}).values():
        if executor.proto.network_name == network:
            names = [o.variable_name for o in executor.proto.output_variable]
            if names and all(n in net.variables for n in names):
                return [net.variables[n] for n in names]
    return None


def load_nnp_model(path, network=None, seed=0, name=None, callback=None, batch_size=None):
    """Build ``network`` (default: the first) of the ``.nnp`` at ``path`` as a :class:`Model`.

    Args:
        callback: an ``NnpNetworkPass`` applied while building (e.g. to cut the graph).
        batch_size: overrides the file's batch size.

    Must run inside the parameter scope that is to receive the file's parameters.
    """
    return build_network(open_nnp(path), path, network, seed, name, callback, batch_size)


def build_network(opened, path, network=None, seed=0, name=None, callback=None, batch_size=None):
    """Like :func:`load_nnp_model`, from what :func:`open_nnp` returned for ``path``."""
    return build_named_network(opened, path, network, seed, name, callback, batch_size)[0]


def build_named_network(opened, path, network=None, seed=0, name=None, callback=None, batch_size=None):
    """:func:`build_network`, and the file's names of the model's inputs and outputs:
    ``(Model, input names, output names)`` (a leaf the file does not name: ``input_<i>``)."""
    loader, names = opened
    if network is None:
        network = names[0]
    elif network not in names:
        raise NnpLoadError("{!r} has no network {!r}; it holds: {}".format(path, network, ", ".join(names)))
    try:
        net = loader.get_network(network, batch_size=batch_size, callback=callback)
    except Exception as e:
        raise NnpLoadError("cannot build network {!r} of {!r} ({}: {})".format(
            network, path, type(e).__name__, e)) from e
    outputs = _declared_outputs(loader, network, net) if callback is None else None
    outputs = outputs or list(net.outputs.values())
    if not outputs:
        raise NnpLoadError("network {!r} of {!r} declares no outputs".format(network, path))
    # Declared inputs first (stable order), then any other leaf the outputs read; declared
    # inputs that a cut graph no longer reads are dropped.
    read = GraphView(outputs, nn.get_parameters(grad_only=False)).inputs
    declared = [v for v in net.inputs.values() if v in set(read)]
    inputs = declared + [v for v in read if v not in set(declared)]
    model = Model(name or path, inputs, outputs, seeded_inputs(inputs, seed),
                  description="network {!r} of {}".format(network, path))
    known = {v: k for k, v in net.variables.items()}
    return (model, [known.get(v, "input_{}".format(i)) for i, v in enumerate(inputs)],
            [known.get(v, "output_{}".format(i)) for i, v in enumerate(outputs)])
