"""Models from ``.nnp`` files as users have them, loaded with NNabla's own loader (``NnpLoader``).

A token is ``path.nnp`` or ``path.nnp::network``. Without ``::network`` the model is the
network the file's executor runs -- a trained model usually holds a training and an
inference network and names the inference one in its executor -- else the file's only (or
first) network. Outputs are those the executor names, else the network's unconsumed
variables. Inputs are the executor's data variables (else the network's declared inputs)
that the outputs read; every other leaf is a parameter of the file or a constant the graph
holds, and keeps its values.

Problems surface when a token is resolved (at start-up, as usage errors naming the file and
the reason): a missing or unreadable file, or a network the file does not hold. Each file
is opened once per process (by path and modification time). Parameters the graph does not
use (NNabla's ONNX importer leaves one for every ``Clip`` with constant bounds) are fine:
NNabla's loader publishes them as ``None`` entries, which are left out.

The loader publishes the file's parameters into the *current* parameter scope when a
network is built; ``ModelSpec.build`` runs builders inside a private scope, so loading
never touches NNabla's global scope.
"""
import os
from functools import partial

from converters.graph_view import GraphView

from ..core.model import Model, ModelSpec, flat_parameters, seeded_inputs
from ..core.registry import UnknownModelError

__all__ = ["NnpLoadError", "nnp_spec", "nnp_resolver", "open_nnp", "load_nnp_model", "build_network",
           "build_named_network", "choose_network", "split_nnp_token", "executor_network", "SELECTOR"]

SELECTOR = "::"
_OPENED = {}  # (absolute path, mtime, size) -> (loader, network names)


class NnpLoadError(UnknownModelError, ValueError):
    """An ``.nnp`` file could not be read or does not hold the requested network (a model
    that cannot be resolved: a usage error at start-up)."""


def split_nnp_token(token):
    """``"dir/x.nnp::net"`` -> ``("dir/x.nnp", "net")``; without a selector the network is None."""
    path, sep, network = token.partition(SELECTOR)
    return path, (network or None) if sep else None


def nnp_spec(token):
    """The ModelSpec of an ``.nnp`` token; the file is opened and the network checked now, so
    a bad token is an error naming the file and the reason before anything runs."""
    path, network = split_nnp_token(token)
    if not os.path.isfile(path):
        raise UnknownModelError("no .nnp file at {!r}".format(path))
    opened = open_nnp(path)
    chosen = choose_network(opened, path, network)
    origin = "its executor's network" if network is None and chosen == executor_network(opened[0]) \
        else "network"
    description = "{} {!r} of {}".format(origin, chosen, path)
    return ModelSpec(token, partial(load_nnp_model, path, chosen, name=token), description)


def nnp_resolver(token):
    """For :class:`~gcverify.core.registry.ModelRegistry`: an ``.nnp`` token's spec, else None."""
    if token.endswith(".nnp") or ".nnp" + SELECTOR in token:
        return nnp_spec(token)
    return None


def open_nnp(path):
    """``(NnpLoader, network names)`` for ``path``, opened once per process; a clear
    NnpLoadError when it is no .nnp."""
    try:
        stat = os.stat(path)
    except OSError as e:
        raise NnpLoadError("cannot read it ({}): {}".format(e.strerror, path)) from None
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _OPENED:
        _OPENED[key] = _open(path)
    return _OPENED[key]


def _open(path):
    from nnabla.utils.nnp_graph import NnpLoader  # NNabla's loader pulls in protobuf: load lazily
    try:
        loader = NnpLoader(path)
    except Exception as e:  # zip, protobuf and h5 readers each raise their own types
        raise NnpLoadError("not a readable .nnp file ({}: {}): {}".format(
            type(e).__name__, str(e).strip() or "no detail", path)) from e
    names = loader.get_network_names()
    if not names:
        raise NnpLoadError("holds no network definition (is it an .nnp saved by NNabla?): {}".format(path))
    return loader, names


def _executors(loader):
    return list(getattr(loader.g, "executors", {}).values())


def executor_network(loader):
    """The network the file's first executor runs, or None without an executor."""
    executors = _executors(loader)
    return executors[0].proto.network_name if executors else None


def choose_network(opened, path, network=None):
    """``network`` when the file holds it (an NnpLoadError naming the file otherwise); without
    one, the network the file's executor runs, else its first."""
    loader, names = opened
    if network is None:
        network = executor_network(loader)
        return network if network in names else names[0]
    if network not in names:
        raise NnpLoadError("has no network {!r} (it holds: {}): {}".format(network, ", ".join(names), path))
    return network


def _executor_of(loader, network):
    return next((e for e in _executors(loader) if e.proto.network_name == network), None)


def load_nnp_model(path, network=None, seed=0, name=None, callback=None, batch_size=None):
    """Build ``network`` (default: the executor's) of the ``.nnp`` at ``path`` as a :class:`Model`.

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
    ``(Model, input names, output names)`` (a variable the file does not name: ``input_<i>``)."""
    import nnabla as nn
    loader = opened[0]
    network = choose_network(opened, path, network)
    try:
        net = loader.get_network(network, batch_size=batch_size, callback=callback)
    except Exception as e:
        raise NnpLoadError("cannot build network {!r} ({}: {}): {}".format(
            network, type(e).__name__, str(e).strip() or "no detail", path)) from e
    executor = _executor_of(loader, network)
    outputs = _named(net, [o.variable_name for o in executor.proto.output_variable]) \
        if executor is not None and callback is None else None
    outputs = outputs or [v for v in net.outputs.values() if v is not None]
    if not outputs:
        raise NnpLoadError("network {!r} declares no outputs: {}".format(network, path))
    declared = _named(net, [d.variable_name for d in executor.proto.data_variable]) \
        if executor is not None else None
    declared = declared or [v for v in net.inputs.values() if v is not None]
    params = flat_parameters(nn.get_current_parameter_scope())
    read = set(GraphView(outputs, params).inputs)
    inputs = [v for v in declared if v in read]  # a cut graph may not read them all
    model = Model(name or path, inputs, outputs, seeded_inputs(inputs, seed), params,
                  description="network {!r} of {}".format(network, path))
    known = {v: k for k, v in net.variables.items() if v is not None}
    return (model, [known.get(v, "input_{}".format(i)) for i, v in enumerate(inputs)],
            [known.get(v, "output_{}".format(i)) for i, v in enumerate(outputs)])


def _named(net, names):
    """The variables of ``net`` called ``names``; None unless every one exists."""
    found = [net.variables.get(n) for n in names]
    return found if names and all(v is not None for v in found) else None
