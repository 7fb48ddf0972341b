"""What a model is: a built network with its seeded input data (:class:`Model`), and how to
build one (:class:`ModelSpec`, the ``@gcverify.model`` mark).

Every build runs inside a private parameter scope (:func:`build_privately`), so building a
model never touches NNabla's global parameter scope; every model without data of its own is
fed :func:`seeded_inputs`.
"""
import fnmatch
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .running import evaluate, feed

__all__ = ["Model", "ModelSpec", "model", "build_privately", "flat_parameters", "scope_holding",
           "seeded_inputs", "MODEL_MARK"]

MODEL_MARK = "__gcverify_model__"


@dataclass
class Model:
    """A built network with its seeded input data.

    ``inputs`` are the variables a user feeds (``input_data[i]`` goes to ``inputs[i]``);
    every other leaf the outputs read is a parameter (named in ``params``, or in a weight
    slot of its function) or a constant the graph holds. ``tolerance`` maps a converter
    name (or ``"*"``) to overrides such as ``{"atol": 1e-4, "rtol": 1e-3}``.
    ``accept_kept`` maps a converter name or glob (``"bn_fold*"``) to the functions this
    model accepts that converter keeping: a type name (``"BatchNormalization"``) or a glob of
    descriptions (``"BatchNormalization 'concat-bn*'"``), for keeps the verifier cannot
    judge valid on its own.
    """

    name: str
    inputs: List[object]
    outputs: List[object]
    input_data: List[object]
    params: Dict[str, object] = field(default_factory=dict)
    tolerance: Dict[str, dict] = field(default_factory=dict)
    description: str = ""
    accept_kept: Dict[str, Tuple[str, ...]] = field(default_factory=dict)

    def accepts_kept(self, converter, type_name, description):
        """Whether this model accepts ``converter`` keeping the function ``description``."""
        for key, patterns in self.accept_kept.items():
            if fnmatch.fnmatchcase(converter, key):
                if any(p == type_name or fnmatch.fnmatchcase(description, p) for p in patterns):
                    return True
        return False

    def feed(self, inputs=None):
        """Put the seeded input data into ``inputs`` (default: the model's own inputs)."""
        feed(self.inputs if inputs is None else inputs, self.input_data)

    def forward(self, outputs=None):
        """Forward the (given or own) outputs on the model's data; returns numpy copies."""
        return evaluate(self.outputs if outputs is None else outputs, self.inputs, self.input_data)

    def tolerance_for(self, converter):
        merged = dict(self.tolerance.get("*", {}))
        merged.update(self.tolerance.get(converter, {}))
        return merged


def build_privately(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` inside a fresh, private parameter scope; returns ``(result,
    {name: parameter})`` of what it created there. The global scope never sees them."""
    import nnabla as nn
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        result = fn(*args, **kwargs)
    return result, flat_parameters(scope)


def flat_parameters(scope):
    """``{"a/b/W": Variable}`` of a (nested) parameter scope. Unlike NNabla's
    ``get_parameters`` it skips entries that are no Variable (NNabla's nnp loader publishes
    a parameter no function uses as None) instead of failing an assertion."""
    import nnabla as nn
    flat = {}
    for key, value in scope.items():
        if isinstance(value, nn.Variable):
            flat[key] = value
        elif isinstance(value, dict):
            flat.update({key + "/" + k: v for k, v in flat_parameters(value).items()})
    return flat


def scope_holding(params):
    """A context entering a fresh parameter scope that holds ``params`` ({name: Variable})
    by name, for code that finds parameters through the current scope (NNabla's own
    converters, ``nnabla.utils.save``). ``nn.parameter_scope("", params)`` would not do:
    NNabla scopes are nested dictionaries and it would write sub-scopes into the flat
    ``params``. Nothing entered there reaches the global scope."""
    import nnabla as nn
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        for name, v in params.items():
            nn.parameter.set_parameter(name, v)
    return nn.parameter_scope("", scope)


def seeded_inputs(variables_or_shapes, seed=0):
    """The seeded data fed to a model's inputs: uniform in [-1, 1), float32, one array per
    input (a variable or a shape), the same for a seed on every machine."""
    import numpy as np
    rng = np.random.RandomState(seed)
    shapes = [tuple(getattr(v, "shape", v)) for v in variables_or_shapes]
    return [rng.uniform(-1.0, 1.0, s).astype(np.float32) for s in shapes]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build a model, and whether it is in the default matrix."""

    name: str
    builder: Callable[..., object]
    description: str = ""
    default: bool = False
    tolerance: Optional[dict] = None
    accept_kept: Optional[dict] = None

    def build(self, seed=0):
        built, params = build_privately(_call_builder, self.builder, seed)
        if isinstance(built, Model):
            built.inputs = _check_variables(self.name, "inputs", built.inputs, allow_empty=True)
            built.outputs = _check_variables(self.name, "outputs", built.outputs)
            built.params = built.params or params
            built.tolerance = {**(self.tolerance or {}), **built.tolerance}
            built.accept_kept = {**_keeps(self.accept_kept), **_keeps(built.accept_kept)}
            return built
        try:
            inputs, outputs = built
        except (TypeError, ValueError):
            raise TypeError("model builder {!r} must return a gcverify.Model or an "
                            "(inputs, outputs) pair, not {!r}".format(self.name, type(built).__name__))
        inputs = _check_variables(self.name, "inputs", inputs, allow_empty=True)
        outputs = _check_variables(self.name, "outputs", outputs)
        return Model(self.name, inputs, outputs, seeded_inputs(inputs, seed), params,
                     dict(self.tolerance or {}), self.description, _keeps(self.accept_kept))


def _keeps(accept_kept):
    """``{converter glob: (pattern, ...)}`` from what a registration gave (a string is one pattern)."""
    return {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (accept_kept or {}).items()}


def _call_builder(builder, seed):
    try:
        return builder(seed=seed)
    except TypeError as e:
        if "seed" not in str(e):
            raise
        return builder()


def _check_variables(model_name, role, values, allow_empty=False):
    """``values`` as a list of nn.Variables, or a TypeError naming the model and the culprit."""
    import nnabla as nn
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


def model(name=None, *, description="", default=False, tolerance=None, accept_kept=None):
    """Mark a builder function as a gcverify model (collected from conftest.py files).

    The builder takes an optional ``seed`` and returns a :class:`Model` or ``(inputs, outputs)``:
    the inputs it returns are what gets fed; every other leaf is a parameter or a constant.
    ``default=True`` puts it in the default matrix (registered defaults replace the zoo's);
    ``accept_kept``: see :class:`Model`.
    """
    def mark(fn):
        setattr(fn, MODEL_MARK, ModelSpec(name or fn.__name__, fn, description or (fn.__doc__ or "").strip(),
                                          default, tolerance, accept_kept))
        return fn
    return mark
