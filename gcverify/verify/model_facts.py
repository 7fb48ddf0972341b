"""What is true of a model whatever converter runs on it, measured once per process and
device: its reference outputs, its random functions, and whether comparing with it can
prove anything at all.

- ``reference``: the outputs of a faithful copy's first forward on the model's data. Every
  case compares with this one forward (a copy of the same model computes the same numbers:
  :mod:`.model_copy` fixes the seeds of random functions), instead of forwarding the model
  again for every converter.
- ``random``: functions drawing with ``seed=-1`` (NoisyNet's Randn, Dropout, random
  augmentation): in every copy they draw with fixed seeds, so the original and a converted
  graph that keeps them draw the same numbers at the same forward.
- ``vacuous``: a comparison proves nothing when no output changes with the input (constant
  weights, a dead branch) or every output is one repeated value; a case on such a model
  fails with that reason instead of passing with zero error.
- ``noise``: the float32 noise floor of each output (:mod:`.noise_floor`), measured when a
  case first needs it.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import nnabla as nn
import numpy as np

from converters.graph_view import GraphView

from ..core.running import evaluate
from .model_copy import copy_model, unseeded_random_functions
from .noise_floor import NoiseFloor, measure_noise_floor

__all__ = ["ModelFacts", "FactsCache", "measure_facts", "other_data"]


@dataclass
class ModelFacts:
    reference: List[np.ndarray]
    random: List[str] = field(default_factory=list)   # "Randn 'noisy/fc'" per unseeded random function
    input_independent: List[int] = field(default_factory=list)
    constant: List[int] = field(default_factory=list)
    inputs_checked: bool = False  # whether input dependence could be measured
    noise: Optional[NoiseFloor] = None

    @property
    def stochastic(self):
        return bool(self.random)

    def notes(self):
        """One line per fact a reader of the row should know."""
        lines = []
        if self.random:
            lines.append("stochastic: {} random function(s) ({}) draw with fixed seeds in both graphs".format(
                len(self.random), ", ".join(sorted(set(r.split(" ")[0] for r in self.random)))))
        n = len(self.reference)
        if self.input_independent and len(self.input_independent) < n:
            lines.append("output(s) {} do not change with the input".format(self.input_independent))
        if self.constant and len(self.constant) < n:
            lines.append("output(s) {} are one repeated value".format(self.constant))
        return lines

    def vacuous(self):
        """Why comparing on this model proves nothing, or None."""
        n = len(self.reference)
        if n and len(self.constant) == n:
            return ("every output of the model is one repeated value on its data: a comparison with "
                    "it proves nothing (check the model's weights and inputs)")
        if n and self.inputs_checked and len(self.input_independent) == n:
            return ("no output of the model changes when its input changes (constant weights or a dead "
                    "branch?): a comparison with it proves nothing")
        return None


def other_data(arrays, seed=1):
    """Input data unlike the model's, from the model's own values (so indices stay valid):
    each array's elements shuffled; a constant float array is shifted instead."""
    rng = np.random.RandomState(seed)
    other = []
    for a in arrays:
        b = rng.permutation(np.ravel(a)).reshape(np.shape(a)).astype(np.asarray(a).dtype)
        if np.array_equal(a, b) and np.issubdtype(np.asarray(a).dtype, np.floating):
            b = np.asarray(a) * 0.5 + 0.5
        other.append(b)
    return other


def _differs(a, b, rel=1e-6):
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-30)
    return bool(a.shape != b.shape or np.max(np.abs(a - b)) > rel * scale)


def measure_facts(model, context=None):
    """The facts of ``model`` on the device of ``context`` (see the module docstring)."""
    with nn.context_scope(context or nn.get_current_context()):
        copy = copy_model(model, context)
        view = GraphView(model.outputs, model.params)
        random = [view.describe(f) for f in unseeded_random_functions(view)]
        reference = evaluate(copy.outputs, copy.inputs, copy.input_data)
        constant = [i for i, r in enumerate(reference) if r.size > 1 and np.ptp(r) == 0]
        facts = ModelFacts(reference, random, constant=constant)
        if not copy.inputs:
            return facts
        try:  # a second copy, so a stochastic graph draws the same numbers as the first
            again = copy_model(model, context) if random else copy
            moved = evaluate(again.outputs, again.inputs, other_data(copy.input_data))
        except Exception:  # data the model cannot take: input dependence stays unknown
            return facts
        facts.inputs_checked = True
        facts.input_independent = [i for i, (r, m) in enumerate(zip(reference, moved)) if not _differs(r, m)]
        return facts


class FactsCache:
    """Facts per model object and device, for one process (models are built once too)."""

    def __init__(self):
        self._facts = {}

    def get(self, model, device_label, context=None):
        key = (id(model), device_label)
        entry = self._facts.get(key)
        if entry is None or entry[0] is not model:  # the id of a freed model may be reused
            entry = (model, measure_facts(model, context))
            self._facts[key] = entry
        return entry[1]

    def noise_floor(self, model, device_label, context=None):
        """The model's NoiseFloor on this device, measured once: on a faithful copy, or on a
        fresh one per trial when the model draws random numbers (each trial must draw what
        the reference drew)."""
        facts = self.get(model, device_label, context)
        if facts.noise is None:
            with nn.context_scope(context or nn.get_current_context()):
                fresh = (lambda: copy_model(model, context)) if facts.stochastic else None
                copy = None if fresh else copy_model(model, context)
                facts.noise = measure_noise_floor(copy, facts.reference, fresh=fresh)
        return facts.noise
