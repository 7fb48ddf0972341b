"""Registries of models and converters: specs by unique name, in registration order.

Registries are plain containers with no defaults: whoever composes a session gives them
their entries (``gcverify.api.default_models()`` adds the zoo, ``default_converters()`` the
built-in rows). The decorators :func:`converter` and :func:`~gcverify.core.model.model` only
*mark* a function (the spec rides on an attribute), so that no registry lives at module level
and each pytest session builds its own from what conftest files mark.

A :class:`ConverterSpec` is data: a ``name`` (the id part in ``[bn_fold-resnet50-cpu]``), a
``kind`` ("ours", or "peer" for NNabla's built-ins, whose failures are expected and shown as
diagnoses), a ``convert(model)`` callable and its expectations (tolerance, layer rules,
whether the graph needs the CPU channel-last emulation, speed per device), and for
conversions whose numbers change by design either the ``quantization`` a quantizer declares
(the verifier checks it and computes its own reference from it) or a ``reference(model)``
that computes the outputs expected instead of the original's (pruning, removing functions).
"""
import fnmatch
import functools
import importlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

from .expectations import TOLERANCES, Speed, Tolerance, as_tolerance
from .model import MODEL_MARK, ModelSpec

__all__ = ["NamedRegistry", "ModelRegistry", "ConverterRegistry", "ConverterSpec", "converter",
           "UnknownModelError", "UnknownConverterError", "CONVERTER_MARK", "KINDS"]

CONVERTER_MARK = "__gcverify_converter__"
KINDS = ("ours", "peer")


class UnknownModelError(LookupError):
    pass


class UnknownConverterError(LookupError):
    pass


class NamedRegistry:
    """Specs by unique name in registration order. Subclasses set ``spec_type``, the
    ``mark`` attribute name, ``what`` (for messages) and ``target`` (the spec field holding
    the function, to tell two entries of one name apart)."""

    spec_type, mark, what, target, unknown_error = None, None, "entry", None, LookupError

    def __init__(self, specs=()):
        self._specs = OrderedDict()
        for spec in specs:
            self.add(spec)

    def coerce(self, obj):
        """``obj`` as a spec: a spec, or a marked function (subclasses may accept more)."""
        spec = obj if isinstance(obj, self.spec_type) else getattr(obj, self.mark, None)
        if not isinstance(spec, self.spec_type):
            raise TypeError("register a {} or a function marked as a gcverify {}, not {!r}".format(
                self.spec_type.__name__, self.what, obj))
        return spec

    def add(self, obj):
        spec = self.coerce(obj)
        known = self._specs.get(spec.name)
        if known is not None and getattr(known, self.target) is not getattr(spec, self.target):
            raise ValueError("two different {}s are registered as {!r}".format(self.what, spec.name))
        self._specs[spec.name] = spec
        return spec

    def marked_in(self, namespace):
        """The specs marked in a module or dict (e.g. a conftest), in definition order."""
        items = namespace.values() if isinstance(namespace, dict) else vars(namespace).values()
        return [v if isinstance(v, self.spec_type) else getattr(v, self.mark) for v in list(items)
                if isinstance(v, self.spec_type) or isinstance(getattr(v, self.mark, None), self.spec_type)]

    def add_marked(self, namespace):
        """Add every marked function (and spec) found in a module or dict."""
        return [self.add(spec) for spec in self.marked_in(namespace)]

    def get(self, name):
        try:
            return self._specs[name]
        except KeyError:
            raise self.unknown_error("unknown {} {!r}; known {}s: {}".format(
                self.what, name, self.what, ", ".join(self._specs))) from None

    def names(self):
        return list(self._specs)

    def __contains__(self, name):
        return name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self):
        return len(self._specs)


class ModelRegistry(NamedRegistry):
    """Known models; resolves names, then each resolver in turn (``.nnp`` paths,
    ``package.module:builder`` specs). A resolver is ``resolve(token) -> ModelSpec or None``.

    The default set is the ``default=True`` models registered after construction (a
    project's own, from its conftest), else those given at construction (the zoo's)."""

    spec_type, mark, what, target = ModelSpec, MODEL_MARK, "model", "builder"
    unknown_error = UnknownModelError

    def __init__(self, specs=(), resolvers=()):
        super().__init__(specs)
        self.resolvers = list(resolvers) + [import_resolver]
        self._built_in = set(self._specs)

    def coerce(self, obj):
        if callable(obj) and not isinstance(getattr(obj, MODEL_MARK, None), ModelSpec) \
                and not isinstance(obj, ModelSpec):
            return ModelSpec(obj.__name__, obj)  # a plain builder function: named after itself
        return super().coerce(obj)

    def default_names(self):
        defaults = [n for n, s in self._specs.items() if s.default]
        registered = [n for n in defaults if n not in self._built_in]
        return registered or defaults

    def resolve(self, token):
        token = token.strip()
        if token in self._specs:
            return self._specs[token]
        for resolver in self.resolvers:
            spec = resolver(token)
            if spec is not None:
                return spec
        raise UnknownModelError("unknown model {!r}; known models: {} (or give package.module:builder "
                                "or a path to an .nnp file)".format(token, ", ".join(self.names())))

    def build(self, token, seed=0):
        return self.resolve(token).build(seed=seed)


def import_resolver(token):
    """``package.module:builder`` -> the builder's spec (marked or plain); None for other tokens."""
    if ":" not in token:
        return None
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
    spec = getattr(fn, MODEL_MARK, None)
    return spec if spec is not None else ModelSpec(token, fn)


@dataclass(frozen=True)
class ConverterSpec:
    """A registry entry. ``convert(model)`` returns a Conversion (or outputs).

    ``skips_by_default``: names of default models this row leaves out of the default matrix
    (where it would see nothing the smaller models do not show, at seconds per case); it runs
    on them when ``--gc-models`` names them.

    ``reference``: None (the converted graph must compute what the model computes), or
    ``reference(model) -> [numpy array per output]``, the outputs it must compute instead on
    ``model.input_data``, derived from ``model`` by code independent of the converter (e.g.
    the model with the channels a pruner must zero masked by the verifier's own numpy). It
    must leave ``model`` as it found it.

    ``low_rank``: a :class:`~gcverify.core.low_rank.LowRankSpec` for a lossy low-rank split: the
    verifier computes the expected outputs (each layer at its best rank-r approximation) and
    checks every split against the discarded-energy bound with its own SVD.
    """

    name: str
    convert: Callable
    kind: str = "ours"
    description: str = ""
    tolerance: Tolerance = TOLERANCES["float32"]
    layers: Tuple[object, ...] = ()
    cpu_emulation: bool = False
    speed: Tuple[Speed, ...] = ()
    quantization: object = None  # a FixedPointSpec / LinearQuantSpec the verifier checks it against
    reference: Optional[Callable] = None  # model -> the outputs expected, when not the original's
    skips_by_default: Tuple[str, ...] = ()  # models left out unless --gc-models names them
    low_rank: object = None  # a LowRankSpec: the split checked against the verifier's own SVD

    @classmethod
    def from_function(cls, fn, kind="ours", **fields):
        """The entry of ``convert`` function ``fn``: named after it, described by its docstring."""
        return cls(fn.__name__, fn, kind, (fn.__doc__ or "").strip(), **fields)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError("converter {!r}: kind must be one of {}, not {!r}".format(
                self.name, KINDS, self.kind))
        if not self.name or "-" in self.name or not self.name.isidentifier():
            raise ValueError("converter name {!r} must be an identifier without '-' (it is "
                             "part of test ids like bn_fold-resnet50-cpu)".format(self.name))
        if sum(x is not None for x in (self.quantization, self.reference, self.low_rank)) > 1:
            raise ValueError("converter {!r}: give one of a quantization spec, a low-rank spec or a "
                             "reference (a spec already defines the reference)".format(self.name))
        if self.reference is not None and not callable(self.reference):
            raise TypeError("converter {!r}: reference must be callable(model), not {!r}".format(
                self.name, self.reference))

    def tolerance_for(self, model):
        return self.tolerance.merged(model.tolerance_for(self.name))

    def variant(self, name, options=None, **changes):
        """This entry under another ``name``: ``convert`` called with the keyword arguments
        ``options``, and any other field replaced by ``changes`` (tolerance, layers...)."""
        convert = functools.partial(self.convert, **options) if options else self.convert
        return replace(self, name=name, convert=convert, **changes)

    def speed_on(self, device):
        return next((s for s in self.speed if s.device == device), None)


def converter(name=None, *, kind="ours", description="", tolerance=None, layers=(),
              cpu_emulation=False, speed=(), quantization=None, reference=None, skips_by_default=(),
              low_rank=None):
    """Mark ``convert(model)`` as a gcverify converter (collected from conftest.py files).

    ``tolerance`` is a :class:`Tolerance`, a preset name ("float32", "quantizer"...) or a
    dict of overrides of the float32 preset; ``quantization`` (a quantizer's declared spec)
    or ``reference(model)`` give the outputs expected where the conversion changes the
    numbers by design (see :class:`ConverterSpec`).
    """
    tolerance = as_tolerance(tolerance)

    def mark(fn):
        setattr(fn, CONVERTER_MARK, ConverterSpec(
            name or fn.__name__, fn, kind, description or (fn.__doc__ or "").strip(), tolerance,
            tuple(layers), cpu_emulation, tuple(speed), quantization=quantization,
            reference=reference, skips_by_default=tuple(skips_by_default), low_rank=low_rank))
        return fn
    return mark


class ConverterRegistry(NamedRegistry):
    """The converters of one session, in registration order (which is the matrix order)."""

    spec_type, mark, what, target = ConverterSpec, CONVERTER_MARK, "converter", "convert"
    unknown_error = UnknownConverterError

    def select(self, selection=None):
        """Entries matching a comma list of names, globs (``nnabla_*``) or kinds (``ours``,
        ``peer``); all of them for an empty selection. Keeps registry order."""
        tokens = [t.strip() for t in (selection or "").split(",") if t.strip()]
        if not tokens:
            return list(self._specs.values())
        chosen = set()
        for t in tokens:
            hits = [s.name for s in self._specs.values()
                    if s.kind == t or fnmatch.fnmatchcase(s.name, t)]
            if not hits:
                raise UnknownConverterError(
                    "--gc-converters: {!r} matches no converter; known converters: {} "
                    "(or a kind: ours, peer; globs like nnabla_* work)".format(
                        t, ", ".join(self._specs)))
            chosen.update(hits)
        return [s for s in self._specs.values() if s.name in chosen]
