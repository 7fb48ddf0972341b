"""gcverify: prove NNabla graph conversions right, as a pytest plugin and as a library.

Layers, each importing only those below it (a contract in pyproject.toml, checked by the
test run): ``plugin`` (pytest wiring) -> ``api``, ``fuzz``, ``testing`` -> ``builtin`` (the
matrix's rows) and ``zoo`` (models from code and files) -> ``verify`` (checks, one case run)
-> ``report`` (the Row, tables, files, baselines) -> ``core`` (models, conversions,
expectations, registries). Names here are imported lazily, so that projects which merely
have gcverify installed do not pay for importing nnabla at every pytest start.
"""
import importlib

_EXPORTS = {
    "Model": "core.model", "ModelSpec": "core.model", "model": "core.model",
    "scope_holding": "core.model",
    "Conversion": "core.conversion",
    "Tolerance": "core.expectations", "TOLERANCES": "core.expectations", "Functions": "core.expectations",
    "Removes": "core.expectations", "Adds": "core.expectations", "Unchanged": "core.expectations",
    "Speed": "core.expectations",
    "FixedPointSpec": "core.quantization", "LinearQuantSpec": "core.quantization",
    "converter": "core.registry", "ConverterSpec": "core.registry", "ConverterRegistry": "core.registry",
    "ModelRegistry": "core.registry", "UnknownModelError": "core.registry",
    "UnknownConverterError": "core.registry",
    "Row": "report.row",
    "convert": "api", "assert_equivalent": "api", "assert_saved": "api", "count_functions": "api",
    "default_models": "api", "default_converters": "api",
}
__all__ = sorted(_EXPORTS) + ["register_model"]


def __getattr__(name):
    if name == "register_model":  # the name downstream conftest files reach for
        name = "model"
    if name in _EXPORTS:
        return getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
    raise AttributeError("module 'gcverify' has no attribute {!r}".format(name))
