"""What ``gcverify convert`` starts from: a network of an ``.nnp`` file (built with NNabla's
loader in a private scope), the data to verify it on, and the converters it may use.

Every problem is a :class:`UsageError` naming the culprit: a missing or unreadable file, a
network the file does not hold, an ``--inputs`` file without an array for an input (or with
one of the wrong shape), a module of user converters that does not import, an unknown
converter name (the message lists the known ones).
"""
import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..api import default_converters
from ..core.model import build_privately
from ..core.registry import UnknownConverterError, UnknownModelError
from ..zoo.nnp import NnpLoadError, build_named_network, choose_network, open_nnp

__all__ = ["UsageError", "Source", "load_source", "read_inputs", "inputs_for", "converter_registry",
           "converter_specs"]


class UsageError(ValueError):
    """A bad argument of the command (exit status 2); the message names it."""


@dataclass
class Source:
    """The network to convert: the built :class:`Model` (its ``input_data`` is what the
    checks feed), the file's names of its inputs and outputs, and which network it is."""

    model: object
    input_names: List[str]
    output_names: List[str]
    network: str
    networks: List[str]
    executor: Optional[str] = None  # the file's executor running ``network``, if any


def load_source(path, network=None, seed=0, batch_size=None):
    """Build ``network`` of the ``.nnp`` at ``path`` (default: the one its first executor
    runs) with seeded inputs; UsageError for a missing or unreadable file or network."""
    if not os.path.isfile(path):
        raise UsageError("{}: no such file".format(path))
    try:
        opened = open_nnp(path)
        loader, names = opened
        chosen = choose_network(opened, path, network)
        (model, inputs, outputs), params = build_privately(
            build_named_network, opened, path, chosen, seed, os.path.basename(path), None, batch_size)
    except (NnpLoadError, UnknownModelError) as e:
        raise UsageError(str(e)) from None
    model.params = params
    executor = next((e.proto.name for e in getattr(loader.g, "executors", {}).values()
                     if e.proto.network_name == chosen), None)
    return Source(model, inputs, outputs, chosen, list(names), executor)


def read_inputs(path):
    """The arrays of the ``.npz`` at ``path`` and their common batch size (None when empty)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise UsageError("--inputs {}: cannot read it as a numpy .npz file ({})".format(path, e)) from None
    for key, a in arrays.items():
        if not np.issubdtype(a.dtype, np.number) or a.ndim == 0:
            raise UsageError("--inputs {}: array {!r} is not a batch of numbers ({} {})".format(
                path, key, a.dtype, a.shape))
    batches = sorted({a.shape[0] for a in arrays.values()})
    if len(batches) > 1:
        raise UsageError("--inputs {}: the arrays have different batch sizes {}".format(path, batches))
    return arrays, (batches[0] if batches else None)


def inputs_for(arrays, source, path):
    """``source``'s input data from ``arrays`` (:func:`read_inputs`): by input name, else
    ``arr_0``, ``arr_1``... (``numpy.savez`` without names) in input order."""
    chosen = []
    for i, (name, x) in enumerate(zip(source.input_names, source.model.inputs)):
        key = name if name in arrays else "arr_{}".format(i)
        if key not in arrays:
            raise UsageError("--inputs {}: no array for input {!r} (shape {}); it holds: {}".format(
                path, name, tuple(x.shape), ", ".join(sorted(arrays)) or "nothing"))
        a = arrays[key]
        if tuple(a.shape) != tuple(x.shape):
            raise UsageError("--inputs {}: array {!r} has shape {}; input {!r} takes {}".format(
                path, key, a.shape, name, tuple(x.shape)))
        chosen.append(np.ascontiguousarray(a, dtype=np.float32))
    return chosen


def _import(token):
    """A module from a dotted name or a ``.py`` file path (e.g. a conftest.py)."""
    if token.endswith(".py") or os.path.sep in token:
        if not os.path.isfile(token):
            raise UsageError("--converters-from {}: no such file".format(token))
        name = "gcverify_user_converters_{}".format(abs(hash(os.path.abspath(token))))
        spec = importlib.util.spec_from_file_location(name, token)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise UsageError("--converters-from {}: importing it raised {}: {}".format(
                token, type(e).__name__, e)) from None
        return module
    try:
        return importlib.import_module(token)
    except Exception as e:
        raise UsageError("--converters-from {}: cannot import it ({}: {})".format(
            token, type(e).__name__, e)) from None


def converter_registry(modules=()):
    """The built-in converters plus those marked (``@gcverify.converter``) in ``modules``."""
    registry = default_converters()
    for token in modules:
        module = _import(token)
        try:
            added = registry.add_marked(module)
        except ValueError as e:
            raise UsageError("--converters-from {}: {}".format(token, e)) from None
        if not added:
            raise UsageError("--converters-from {}: it marks no converter (use "
                             "@gcverify.converter)".format(token))
    return registry


def converter_specs(registry, names):
    """The specs called ``names`` (a comma list), in that order."""
    tokens = [t.strip() for t in (names or "").split(",")]
    if not any(tokens):
        raise UsageError("--with needs at least one converter name; known converters: {}".format(
            ", ".join(registry.names())))
    if not all(tokens):
        raise UsageError("--with {!r} has an empty name".format(names))
    try:
        return [registry.get(t) for t in tokens]
    except UnknownConverterError as e:
        raise UsageError(str(e.args[0])) from None
