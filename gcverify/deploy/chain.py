"""Registered converters applied one after another, as one :class:`ConverterSpec` the matrix's
case run can judge (``gcverify convert --with bn_fold,channel_last``).

Step ``k + 1`` converts the graph step ``k`` produced, seen as a :class:`Model` whose inputs
are the variables step ``k`` says to feed (with the data moved there). The chain's
:class:`Conversion` composes what the steps state: input and output layouts
(``compose_perms``), the variable map (original -> last graph, when every step has one),
parameters and events. Its expectations:

- tolerance: the steps' tolerances added up (errors of consecutive steps add at most);
- layer rules: each step's rules, judged on *that* step's graph before and after (a later
  step may rightly bring back what an earlier one removed, e.g. ``channel_last`` then
  ``channel_first``), reported as ``step 2 channel_last: ...``;
- speed: per device, the expectation of the last step that states one;
- the CPU channel-last emulation when any step needs it; ``peer`` when any step is NNabla's.

A single converter is its registered spec unchanged. Either way :class:`Chain` keeps the
first :class:`Conversion` it made (a case may convert again, e.g. in half precision for a
speed check), so the command can write what was verified.
"""
from dataclasses import dataclass, replace
from typing import Tuple

from converters.graph_view import GraphView

from ..core.conversion import Conversion
from ..core.expectations import Tolerance
from ..core.layouts import compose_perms
from ..core.model import Model
from ..core.registry import ConverterSpec
from ..verify.case import convert_model
from ..verify.execution import input_arrays
from ..verify.structure import layer_check

__all__ = ["Chain", "StepRule", "chain_tolerance", "compose"]


@dataclass(frozen=True)
class StepRule:
    """Layer rule ``rule`` of step ``index`` (``name``), judged on that step's graphs, which
    ``trace[index]`` holds as ``(view before, view after, conversion)`` once the chain ran
    (a kept function is judged with that step's own events and variable map)."""

    index: int
    name: str
    rule: object
    trace: list

    def check(self, before, after):
        view_before, view_after, conversion = self.trace[self.index]
        result = layer_check(view_before, view_after, [self.rule], conversion)
        return result.passed, "step {} {}: {}".format(self.index + 1, self.name, result.details[0][5:])


def chain_tolerance(tolerances):
    """The sum of ``tolerances`` (each term of
    ``|d| <= floor + noise * noise_floor + atol*scale + rtol*|e|``)."""
    if len(tolerances) == 1:
        return tolerances[0]
    rms = [t.rms for t in tolerances if t.rms is not None]
    noise = [t.noise for t in tolerances if t.noise is not None]
    return Tolerance(rtol=sum(t.rtol for t in tolerances), atol=sum(t.atol for t in tolerances),
                     rms=sum(rms) if rms else None, floor=sum(t.floor for t in tolerances),
                     noise=sum(noise) if noise else None,
                     name="+".join(t.name or "custom" for t in tolerances))


def _as_model(conversion, model):
    """The graph ``conversion`` produced, as a Model the next step converts."""
    return Model(model.name, list(conversion.inputs), list(conversion.outputs),
                 input_arrays(conversion, model.input_data), dict(conversion.parameters),
                 dict(model.tolerance), model.description)


def compose(first, second):
    """One Conversion for ``second`` applied to the graph of ``first``."""
    explicit = first.input_data is not None or second.input_data is not None
    n_in, n_out = len(second.inputs), len(second.outputs)
    var_map = ({k: second.var_map.get(v, v) for k, v in first.var_map.items()}
               if first.var_map and second.var_map else {})
    return Conversion(
        list(second.outputs), list(second.inputs), var_map, dict(second.parameters),
        list(first.events) + list(second.events),
        input_perms=None if explicit else [compose_perms(p, q) for p, q in zip(
            first.input_perms or [None] * n_in, second.input_perms or [None] * n_in)],
        output_perms=[compose_perms(p, q) for p, q in zip(
            first.output_perms or [None] * n_out, second.output_perms or [None] * n_out)],
        names={**first.names, **second.names})


class Chain:
    """``specs`` (ConverterSpecs, in order) as one spec (:attr:`spec`); :attr:`conversion` is
    the first Conversion it made, :attr:`step_seconds` how long each step took."""

    def __init__(self, specs, on_step=None):
        self.specs = tuple(specs)
        if not self.specs:
            raise ValueError("a chain needs at least one converter")
        self.on_step = on_step  # on_step(index, spec) before each step, (len, None) after all
        self.conversion = None
        self.step_seconds = []
        self._trace = []
        self.spec = self._make_spec()

    def _make_spec(self):
        specs = self.specs
        if len(specs) == 1:
            return replace(specs[0], convert=self.convert)
        layers: Tuple[object, ...] = tuple(StepRule(i, s.name, r, self._trace)
                                           for i, s in enumerate(specs) for r in s.layers)
        speed = {}
        for s in specs:
            speed.update({e.device: e for e in s.speed})
        return ConverterSpec(
            "_then_".join(s.name for s in specs), self.convert,
            "peer" if any(s.kind == "peer" for s in specs) else "ours",
            " then ".join(s.name for s in specs), chain_tolerance([s.tolerance for s in specs]),
            layers, any(s.cpu_emulation for s in specs), tuple(speed.values()))

    def convert(self, model):
        first_run = self.conversion is None
        result, current = None, model
        for i, spec in enumerate(self.specs):
            if self.on_step is not None and first_run:
                self.on_step(i, spec)
            step, seconds = convert_model(spec, current)
            if first_run:
                self.step_seconds.append(seconds)
                self._trace.append((GraphView(current.outputs, current.params),
                                    GraphView(step.outputs, step.parameters), step))
            result = step if result is None else compose(result, step)
            current = _as_model(step, current)
        if first_run:
            self.conversion = result
            if self.on_step is not None:
                self.on_step(len(self.specs), None)
        return result
