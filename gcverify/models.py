"""The model registry: names, ``package.module:builder`` specs and ``.nnp`` paths -> Models.

There is no module-level registry. ``@gcverify.model`` only marks a builder function; the
plugin collects marked builders from conftest modules into the session's registry, and a
``module:builder`` spec is imported on demand. Every build runs inside a private parameter
scope, so building models never touches NNabla's global parameter scope.
"""
import importlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import nnabla as nn
import numpy as np

from .named_registry import NamedRegistry

__all__ = ["Model", "ModelSpec", "ModelRegistry", "model", "UnknownModelError"]

MARK = "__gcverify_model__"


class UnknownModelError(LookupError):
    pass


@dataclass
class Model:
    """A built network with its seeded input data.

    ``tolerance`` maps a converter name (or ``"*"``) to overrides such as
    ``{"atol": 1e-4, "rtol": 1e-3}``; the converter's own expectation applies otherwise.
    """

    name: str
    inputs: List[nn.Variable]
    outputs: List[nn.Variable]
    input_data: List[np.ndarray]
    params: Dict[str, nn.Variable] = field(default_factory=dict)
    tolerance: Dict[str, dict] = field(default_factory=dict)
    description: str = ""

    def feed(self, inputs=None):
        """Put the seeded input data into ``inputs`` (default: the model's own inputs)."""
        for x, d in zip(inputs if inputs is not None else self.inputs, self.input_data):
            x.d = d

    def forward(self, outputs=None):
        """Forward the (given or own) outputs on the model's inputs; returns numpy copies."""
        outputs = list(outputs if outputs is not None else self.outputs)
        self.feed()
        nn.forward_all(outputs, clear_no_need_grad=True)
        return [o.d.copy() for o in outputs]

    def parameter_scope(self):
        """A context entering a fresh nested scope that holds ``params`` by name (for PF or
        ``nnabla.utils.save``). ``nn.parameter_scope("", model.params)`` would not do: NNabla
        scopes are nested dictionaries and it would write sub-scopes into the flat ``params``."""
        scope = OrderedDict()
        with nn.parameter_scope("", scope):
            for name, v in self.params.items():
                nn.parameter.set_parameter(name, v)
        return nn.parameter_scope("", scope)

    def tolerance_for(self, converter):
        merged = dict(self.tolerance.get("*", {}))
        merged.update(self.tolerance.get(converter, {}))
        return merged


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build a model, and whether it is in the default matrix."""

    name: str
    builder: Callable[..., object]
    description: str = ""
    default: bool = False
    tolerance: Optional[dict] = None

    def build(self, seed=0):
        scope = OrderedDict()
        with nn.parameter_scope("", scope):
            built = _call_builder(self.builder, seed)
        with nn.parameter_scope("", scope):
            params = nn.get_parameters(grad_only=False)
        if isinstance(built, Model):
            built.inputs = _check_variables(self.name, "inputs", built.inputs, allow_empty=True)
            built.outputs = _check_variables(self.name, "outputs", built.outputs)
            built.params = built.params or params
            built.tolerance = {**(self.tolerance or {}), **built.tolerance}
            return built
        try:
            inputs, outputs = built
        except (TypeError, ValueError):
            raise TypeError("model builder {!r} must return a gcverify.Model or an "
                            "(inputs, outputs) pair, not {!r}".format(self.name, type(built).__name__))
        inputs = _check_variables(self.name, "inputs", inputs, allow_empty=True)
        outputs = _check_variables(self.name, "outputs", outputs)
        rng = np.random.RandomState(seed)
        data = [rng.normal(0.0, 1.0, x.shape).astype(np.float32) for x in inputs]
        return Model(self.name, inputs, outputs, data, params, dict(self.tolerance or {}),
                     self.description)


def _call_builder(builder, seed):
    try:
        return builder(seed=seed)
    except TypeError as e:
        if "seed" not in str(e):
            raise
        return builder()


def _check_variables(model_name, role, values, allow_empty=False):
    """``values`` as a list of nn.Variables, or a TypeError naming the model and the culprit."""
    if isinstance(values, nn.Variable):
        return [values]
    try:
        values = list(values)
    except TypeError:
        values = [values]
    bad = [i for i, v in enumerate(values) if not isinstance(v, nn.Variable)]
    if bad:
        raise TypeError("model builder {!r}: {} [{}] is a {}, not an nnabla.Variable".format(
            model_name, role, bad[0], type(values[bad[0]]).__name__))
    if not values and not allow_empty:
        raise TypeError("model builder {!r} returned no {}".format(model_name, role))
    return values


def model(name=None, *, description="", default=False, tolerance=None):
    """Mark a builder function as a gcverify model (collected from conftest.py files).

    The builder takes an optional ``seed`` and returns a :class:`Model` or ``(inputs, outputs)``.
    """
    def mark(fn):
        setattr(fn, MARK, ModelSpec(name or fn.__name__, fn, description or (fn.__doc__ or "").strip(),
                                    default, tolerance))
        return fn
    return mark


class ModelRegistry(NamedRegistry):
    """Known models of one session; resolves names, ``module:builder`` specs and ``.nnp`` paths."""

    spec_type, mark, what, target = ModelSpec, MARK, "model", "builder"

    @classmethod
    def with_zoo(cls):
        from .zoo import ZOO
        return cls(ZOO)

    def coerce(self, obj):
        if callable(obj) and not isinstance(getattr(obj, MARK, None), ModelSpec) \
                and not isinstance(obj, ModelSpec):
            return ModelSpec(obj.__name__, obj)  # a plain builder function: named after itself
        return super().coerce(obj)

    def default_names(self):
        return [n for n, s in self._specs.items() if s.default]

    def resolve(self, token):
        token = token.strip()
        if token in self._specs:
            return self._specs[token]
        if token.endswith(".nnp") or ".nnp::" in token:  # a file, optionally ::network
            from .zoo.nnp import nnp_spec
            return nnp_spec(token)
        if ":" in token:
            return _import_spec(token)
        raise UnknownModelError("unknown model {!r}; known models: {} (or give package.module:builder "
                                "or a path to an .nnp file)".format(token, ", ".join(self.names())))

    def build(self, token, seed=0):
        return self.resolve(token).build(seed=seed)


def _import_spec(token):
    module_name, _, attr = token.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UnknownModelError("cannot import {!r} for model spec {!r}: {}".format(
            module_name, token, e)) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UnknownModelError("model spec {!r}: module {!r} has no callable {!r}".format(
            token, module_name, attr))
    spec = getattr(fn, MARK, None)
    return spec if spec is not None else ModelSpec(token, fn)
