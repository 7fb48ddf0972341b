"""gcverify: prove NNabla graph conversions right, as a pytest plugin and as a library.

Layers: registries (``models``, ``registry`` of converters, ``devices``) -> ``checks`` ->
``report``; ``plugin`` only wires pytest hooks. Names are imported lazily so that projects
which merely have gcverify installed do not pay for importing nnabla at every pytest start.
"""
import importlib

_EXPORTS = {
    "Model": "models", "ModelRegistry": "models", "ModelSpec": "models",
    "UnknownModelError": "models", "model": "models",
    "converter": "registry", "Conversion": "registry", "ConverterSpec": "registry",
    "ConverterRegistry": "registry", "Tolerance": "registry", "TOLERANCES": "registry",
    "Functions": "registry", "Removes": "registry", "Adds": "registry", "Unchanged": "registry",
    "Speed": "registry", "UnknownConverterError": "registry",
}
__all__ = sorted(_EXPORTS) + ["register_model"]


def __getattr__(name):
    if name == "register_model":  # the name downstream conftest files reach for
        name = "model"
    if name in _EXPORTS:
        return getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
    raise AttributeError("module 'gcverify' has no attribute {!r}".format(name))
