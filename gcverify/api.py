"""What the fixtures do, usable without pytest too: convert a model, assert two graphs
equivalent with the numeric report, count functions."""
from collections import Counter
from dataclasses import replace

from converters.graph_view import GraphView

from .checks import numeric_check
from .evaluation import guess_layouts, on_cpu, run_conversion, runnable_outputs
from .registry import MARK, TOLERANCES, Conversion, ConverterSpec, Tolerance, as_conversion
from .runner import convert_model, divergence

__all__ = ["resolve_converter", "convert", "assert_equivalent", "count_functions", "as_tolerance"]


def resolve_converter(converter, registry=None):
    """A ConverterSpec from a registered name, a spec, a marked function or any
    ``convert(model)`` callable."""
    if isinstance(converter, ConverterSpec):
        return converter
    if isinstance(converter, str):
        if registry is None:
            from .registry import ConverterRegistry
            registry = ConverterRegistry.builtin()
        return registry.get(converter)
    spec = getattr(converter, MARK, None)
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


def as_tolerance(tolerance):
    if tolerance is None:
        return TOLERANCES["float32"]
    if isinstance(tolerance, Tolerance):
        return tolerance
    if isinstance(tolerance, str):
        try:
            return TOLERANCES[tolerance]
        except KeyError:
            raise ValueError("unknown tolerance preset {!r}; presets: {}".format(
                tolerance, ", ".join(TOLERANCES))) from None
    return TOLERANCES["float32"].merged(tolerance)


def assert_equivalent(model, converted, tolerance=None, inputs=None):
    """Assert the converted graph computes what ``model`` computes on the model's data.

    ``converted`` is a Conversion, an output Variable or a list of them; ``inputs`` are the
    variables to feed (default: the conversion's, else the model's). Channel-last inputs and
    outputs are transposed as needed; on CPU a graph with channel-last functions runs through
    ``converters.layout_emulation``. Raises AssertionError with the numeric report (and the
    first diverging function when the conversion carries a variable map); returns the
    CheckResult otherwise.
    """
    __tracebackhide__ = True
    conversion = as_conversion(converted, model)
    if inputs is not None:
        conversion = replace(conversion, inputs=list(inputs))
    conversion = guess_layouts(replace(conversion), model)  # a copy: the caller's stays as given
    tol = as_tolerance(tolerance)
    reference = model.forward()
    outputs = runnable_outputs(conversion, on_cpu())
    actual = run_conversion(conversion, model.input_data, outputs)
    result = numeric_check(actual, reference, tol)
    if not result.passed and conversion.var_map and outputs is conversion.outputs:
        where = divergence(model, conversion, tol, GraphView(model.outputs, model.params))
        if where:
            result.details.insert(0, where)
    if not result.passed:
        raise AssertionError("graphs are not equivalent on model {!r}\n{}".format(
            model.name, result.message()))
    return result


def count_functions(outputs, type_name=None):
    """The function histogram of the graph computing ``outputs`` (a Counter), or the count
    of one function type."""
    outputs = outputs.outputs if isinstance(outputs, Conversion) else outputs
    histogram = Counter(GraphView(outputs, {}).histogram())
    return histogram if type_name is None else histogram.get(type_name, 0)
