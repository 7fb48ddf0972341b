"""gcverify: prove NNabla graph conversions right, as a pytest plugin and as a library.

Layers: registries (``models``, ``registry`` of converters, ``devices``) -> ``checks`` -> ``report``;
``plugin`` only wires pytest hooks.
"""
from .models import Model, ModelRegistry, ModelSpec, UnknownModelError, model

register_model = model  # the name downstream conftest files reach for

__all__ = ["Model", "ModelRegistry", "ModelSpec", "UnknownModelError", "model", "register_model"]
