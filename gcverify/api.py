"""gcverify as a library (no pytest needed; the fixtures are these functions): the default
registries, convert a model, assert two graphs equivalent with the numeric report, count
functions."""
from collections import Counter
from dataclasses import replace

from converters.graph_view import GraphView

from .builtin import BUILTIN
from .core.conversion import Conversion, as_conversion
from .core.expectations import as_tolerance
from .core.registry import CONVERTER_MARK, ConverterRegistry, ConverterSpec, ModelRegistry
from .verify.case import convert_model, diagnostic_tolerance, divergence
from .verify.execution import evaluate, guess_layouts, on_cpu, run_conversion, runnable_outputs
from .verify.model_copy import copy_model
from .verify.noise_floor import measure_noise_floor
from .verify.numeric import numeric_check
from .verify.saved import SavedOptions, saved_check
from .zoo import ZOO
from .zoo.nnp import nnp_resolver

__all__ = ["default_models", "default_converters", "resolve_converter", "convert",
           "assert_equivalent", "assert_saved", "count_functions", "as_tolerance"]


def default_models():
    """A model registry holding the zoo; resolves ``.nnp`` paths and ``module:builder`` specs."""
    return ModelRegistry(ZOO, resolvers=[nnp_resolver])


def default_converters():
    """A converter registry holding the built-in rows (ours, then NNabla's peers)."""
    return ConverterRegistry(BUILTIN)


def resolve_converter(converter, registry=None):
    """A ConverterSpec from a registered name, a spec, a marked function or any
    ``convert(model)`` callable."""
    if isinstance(converter, ConverterSpec):
        return converter
    if isinstance(converter, str):
        return (registry if registry is not None else default_converters()).get(converter)
    spec = getattr(converter, CONVERTER_MARK, None)
    if spec is not None:
        return spec
    if callable(converter):
        name = getattr(converter, "__name__", "custom").replace("<lambda>", "custom")
        return ConverterSpec(name if name.isidentifier() else "custom", converter)
    raise TypeError("a converter is a registered name, a ConverterSpec or a callable "
                    "convert(model); got {!r}".format(converter))


def convert(converter, model, registry=None):
    """Convert ``model`` with ``converter``; a :class:`Conversion` (``.seconds`` is set)."""
    conversion, _ = convert_model(resolve_converter(converter, registry), model)
    return conversion


def assert_equivalent(model, converted, tolerance=None, inputs=None):
    """Assert the converted graph computes what ``model`` computes on the model's data.

    ``converted`` is a Conversion, an output Variable or a list of them; ``inputs`` are the
    variables to feed (default: the conversion's, else the model's). Channel-last inputs and
    outputs are transposed as needed; on CPU a graph with channel-last functions runs through
    ``converters.layout_emulation``. ``tolerance``: by default ``float32``, a multiple of the
    model's float32 noise floor (measured on a faithful copy). Raises AssertionError with the
    numeric report (and the first diverging function when the conversion carries a variable
    map); returns the CheckResult otherwise.
    """
    __tracebackhide__ = True
    conversion = as_conversion(converted, model)
    if inputs is not None:
        conversion = replace(conversion, inputs=list(inputs))
    conversion = guess_layouts(replace(conversion), model)  # a copy: the caller's stays as given
    tol = as_tolerance(tolerance)
    reference = evaluate(model.outputs, model.inputs, model.input_data)
    outputs = runnable_outputs(conversion, on_cpu())
    actual = run_conversion(conversion, model.input_data, outputs)
    noise = measure_noise_floor(copy_model(model), reference).floors if tol.noise is not None else None
    result = numeric_check(actual, reference, tol, noise)
    if not result.passed and conversion.var_map and outputs is conversion.outputs:
        where = divergence(model, conversion, diagnostic_tolerance(tol, result.figures),
                           GraphView(model.outputs, model.params))
        if where:
            result.details.insert(0, where)
    if not result.passed:
        raise AssertionError("graphs are not equivalent on model {!r}\n{}".format(
            model.name, result.message()))
    return result


def assert_saved(model, converted, inputs=None, path=None):
    """Assert the converted graph survives NNabla's ``.nnp`` format: written with NNabla's
    saver (to ``path`` when given, kept there; else a temporary file), reloaded with its
    loader, it gives bit-identical outputs on the model's data and holds the same functions.
    A graph the format cannot hold (a Python function) fails with the reason. Returns the
    CheckResult."""
    __tracebackhide__ = True
    conversion = as_conversion(converted, model)
    if inputs is not None:
        conversion = replace(conversion, inputs=list(inputs))
    conversion = guess_layouts(replace(conversion), model)
    result = saved_check(conversion, model, model.input_data,
                         options=SavedOptions(mode="all", path=path, unsaveable_fails=True))
    if not result.passed:
        raise AssertionError("the converted graph of model {!r} does not survive .nnp\n{}".format(
            model.name, result.message()))
    return result


def count_functions(outputs, type_name=None):
    """The function histogram of the graph computing ``outputs`` (a Counter), or the count
    of one function type."""
    outputs = outputs.outputs if isinstance(outputs, Conversion) else outputs
    histogram = Counter(GraphView(outputs, {}).histogram())
    return histogram if type_name is None else histogram.get(type_name, 0)
