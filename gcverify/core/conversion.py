"""What a converter produced, normalised for the checks: :class:`Conversion`."""
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

__all__ = ["Conversion", "as_conversion"]


@dataclass
class Conversion:
    """A converted graph and how it relates to the original model.

    ``inputs[i]`` is the variable to feed with the model's ``input_data[i]``, moved by
    ``input_perms[i]`` (``transpose`` axes, e.g. channel-last; None: as is), unless
    ``input_data`` gives the arrays outright. Output ``i`` holds
    ``transpose(original_i, output_perms[i])`` (None: the original layout).
    ``var_map`` maps original variables to the converted graph's (for locating the first
    diverging function); ``parameters`` names the converted graph's parameters (model
    parameters plus new ones); ``events`` are what the converter reported doing (our
    converters' ``Rewrite.events``: folded, kept with a reason, ...); ``notes`` are lines the
    row should show (e.g. which inputs a layout conversion converted); ``names`` names
    intermediate variables for a saved file (e.g. the statistics taps of a calibration graph).
    """

    outputs: List[object]
    inputs: Optional[List[object]] = None
    var_map: Dict[object, object] = field(default_factory=dict)
    parameters: Dict[str, object] = field(default_factory=dict)
    events: list = field(default_factory=list)
    seconds: Optional[float] = None  # conversion time, when measured
    input_perms: Optional[list] = None
    input_data: Optional[list] = None
    output_perms: Optional[list] = None
    notes: List[str] = field(default_factory=list)
    names: Dict[str, object] = field(default_factory=dict)

    @property
    def params(self):
        return self.parameters


def as_conversion(result, model):
    """Accept what a user's ``convert(model)`` returns: a Conversion, outputs, or
    ``(outputs, inputs)``; the model's own inputs are fed when none are given."""
    import nnabla as nn
    if isinstance(result, Conversion):
        if result.inputs is None or not result.parameters:
            result = replace(result, inputs=list(model.inputs if result.inputs is None else result.inputs),
                             parameters=result.parameters or dict(model.params))
        return result
    inputs = list(model.inputs)
    if isinstance(result, tuple) and len(result) == 2 and not isinstance(result[0], nn.Variable):
        result, inputs = result
    outputs = [result] if isinstance(result, nn.Variable) else list(result)
    for i, o in enumerate(outputs):
        if not isinstance(o, nn.Variable):
            raise TypeError("converter output {} is a {}, not an nnabla.Variable".format(
                i, type(o).__name__))
    return Conversion(outputs, list(inputs), parameters=dict(model.params))
