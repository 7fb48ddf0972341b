"""Check one converter on one graph: equal within tolerance, or a clear refusal; nothing changed.

``check(target, model) -> Outcome``. The order matters:

1. snapshot the original (:class:`gcverify.verify.snapshot.Snapshot`: functions, their
   arguments and wiring, every parameter and constant by value, shape and need_grad, and
   NNabla's global parameter scope);
2. forward the original, then put the parameter values back (a BatchNormalization with
   ``batch_stat=True`` updates its running statistics while it runs);
3. convert, and compare with the snapshot *before* running anything converted;
4. a raised exception is a *clear refusal* when it is a ValueError, TypeError or
   NotImplementedError whose message names the culprit: a function type of the graph
   (``BatchNormalization``), one of its parameter names, or an input/output by index;
   anything else (RuntimeError from NNabla, KeyError, AttributeError, a message naming
   nothing) is a crash;
5. evaluate the converted graph as the matrix does (:mod:`gcverify.evaluation`: inputs fed
   and outputs read back in the layouts the Conversion states, channel-last graphs through
   ``cpu_runnable`` on CPU), restore the parameters again, and compare each output under
   the target's :class:`~gcverify.core.expectations.Tolerance`: for lossless float32
   converters the matrix's own verdict, a multiple of each output's measured float32 noise
   floor (:mod:`gcverify.verify.noise_floor`, measured on the original before converting);
   the fixed-point targets keep ``FUZZ_FLOAT32`` with a larger absolute floor. Outputs must
   be finite.

Targets are usually the registry's converters: ``FuzzTarget.from_spec(spec, **overrides)``.
"""
import re
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from converters.fast_rebuild import fast_nnabla_imports
from converters.graph_view import GraphView
from converters.rewrite import ConversionWarning

from ..core.conversion import Conversion, as_conversion
from ..core.expectations import Tolerance
from ..verify.execution import evaluate, on_cpu, run_conversion, runnable_outputs
from ..verify.noise_floor import measure_noise_floor
from ..verify.numeric import compare_arrays
from ..verify.snapshot import CHANGE_KINDS, Snapshot
from ..verify.structure import wiring_check

__all__ = ["FuzzTarget", "Conversion", "Outcome", "check", "is_clear_refusal",
           "FAILURE_KINDS", "FUZZ_FLOAT32"]

FAILURE_KINDS = CHANGE_KINDS + ("crash", "unclear-refusal", "bad-outputs", "not-runnable", "mismatch")
REFUSAL_TYPES = (ValueError, TypeError, NotImplementedError)
# float32 rewrites of random graphs: their magnitudes are random, so the error is measured
# against each output's largest value, plus a small absolute floor for outputs near zero
FUZZ_FLOAT32 = Tolerance(rtol=0.0, atol=1e-4, name="fuzz-float32", floor=1e-5)


@dataclass(frozen=True)
class FuzzTarget:
    """A converter under fuzz: ``convert(model)`` returns the new output(s) or a
    :class:`~gcverify.registry.Conversion` (which states moved input/output layouts).

    ``tolerance`` is a registry Tolerance; ``cpu_emulation`` runs the converted graph through
    ``cpu_runnable`` even without channel-last functions; ``may_refuse=False`` makes any
    refusal a failure, and a fuzz run fails when more than ``max_refused`` of its graphs are
    refused (a converter that refuses everything would otherwise pass untested).
    """

    name: str
    convert: Callable
    tolerance: Tolerance = FUZZ_FLOAT32
    may_refuse: bool = True
    max_refused: float = 0.2
    description: str = ""
    cpu_emulation: bool = False

    @classmethod
    def from_spec(cls, spec, **overrides):
        """The registry entry ``spec`` under fuzz: its name, convert, tolerance, description
        and CPU emulation, each replaceable by ``overrides``."""
        fields = dict(name=spec.name, convert=spec.convert, tolerance=spec.tolerance,
                      description=spec.description, cpu_emulation=spec.cpu_emulation)
        fields.update(overrides)
        return cls(**fields)


@dataclass
class Outcome:
    target: str
    status: str                 # "converted", "refused" or "failed"
    kind: Optional[str] = None  # one of FAILURE_KINDS when failed
    message: str = ""
    errors: List[dict] = field(default_factory=list)  # per output: max_abs, scale, mismatches
    changed: bool = False       # the converted graph computes with other functions/arguments

    @property
    def ok(self):
        return self.status != "failed"

    def summary(self):
        head = "{}: {}".format(self.target, self.status if self.ok else "FAILED ({})".format(self.kind))
        return head + (": " + self.message if self.message else "")


def is_clear_refusal(error, model):
    """A ValueError/TypeError/NotImplementedError whose message names the culprit."""
    if not isinstance(error, REFUSAL_TYPES):
        return False
    message = str(error)
    view = GraphView(model.outputs, model.params)
    culprits = set(view.histogram()) | {k for k in model.params}
    if any(c in message for c in culprits):
        return True
    return re.search(r"\b(inputs?|outputs?)\s*\[?\s*#?\d", message) is not None


def _where(error):
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/converters/" in f.filename] or frames
    return "{}:{}".format(ours[-1].filename.rsplit("/", 2)[-1], ours[-1].lineno) if ours else "?"


def _exception_text(error):
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return "{}: {} (at {})".format(type(error).__name__, first, _where(error))


def _compare(reference, actual, tol, noise):
    errors, worst = [], None
    for i, (ref, out) in enumerate(zip(reference, actual)):
        diff = compare_arrays(out, ref, tol, brief=True, noise=noise[i] if noise else None)
        finite = bool(np.isfinite(out).all())
        max_abs = diff.max_abs if finite else float("inf")
        errors.append({"output": i, "max_abs": max_abs, "scale": diff.scale,
                       "mismatches": diff.mismatches})
        if (not diff.passed or not finite) and worst is None:
            worst = "output {}: max abs error {:.3g} beyond {} (scale {:.3g}; {} of {} elements, " \
                    "first at {})".format(i, max_abs, tol.describe(), diff.scale, diff.mismatches,
                                          diff.size, diff.first_index)
    return errors, worst


def _fail(target, kind, message, errors=()):
    return Outcome(target.name, "failed", kind, message, list(errors))


def check(target, model):
    """Run ``target`` on ``model`` and judge the result (see the module docstring)."""
    with fast_nnabla_imports():  # thousands of tiny graphs: NNabla's per-call import tax dominates
        return _check(target, model)


def _check(target, model):
    snapshot = Snapshot.take(model.outputs, model.params, model.inputs)
    reference = evaluate(model.outputs, model.inputs, model.input_data)
    noise = measure_noise_floor(model, reference).floors if target.tolerance.noise is not None else None
    if snapshot.runs_mutate:
        snapshot.restore()
    try:
        with warnings.catch_warnings():  # "kept BN ..." warnings are expected; judged below
            warnings.simplefilter("ignore", ConversionWarning)
            result = target.convert(model)
        error = None
    except Exception as e:  # judged below: a refusal or a crash
        result, error = None, e
    changed = snapshot.changes(model.outputs, model.params)
    if changed:
        snapshot.restore()
        return _fail(target, changed[0].kind, changed[0].message + (
            " (and then raised {})".format(_exception_text(error)) if error else ""))
    if error is not None:
        if is_clear_refusal(error, model):
            if not target.may_refuse:
                return _fail(target, "unclear-refusal", "refused, but this target must convert "
                             "every graph: " + _exception_text(error))
            return Outcome(target.name, "refused", message=_exception_text(error))
        kind = "unclear-refusal" if isinstance(error, REFUSAL_TYPES) else "crash"
        return _fail(target, kind, _exception_text(error))
    try:
        conv = as_conversion(result, model)
    except TypeError as e:
        return _fail(target, "bad-outputs", "convert returned {!r}: {}".format(type(result).__name__, e))
    if len(conv.outputs) != len(reference):
        return _fail(target, "bad-outputs", "{} outputs instead of {}".format(len(conv.outputs), len(reference)))
    view = GraphView(conv.outputs, conv.parameters or {})
    original = GraphView(model.outputs, model.params)
    wiring = wiring_check(view, conv.inputs, list(original.inputs) + list(original.parameters))
    if not wiring.passed:
        return _fail(target, "bad-outputs", wiring.message())
    try:
        functions = view.functions
        actual = run_conversion(conv, model.input_data,
                                runnable_outputs(conv, on_cpu(), target.cpu_emulation, functions))
    except Exception as e:  # the converted graph does not run
        if snapshot.runs_mutate:
            snapshot.restore()
        return _fail(target, "not-runnable", _exception_text(e))
    if snapshot.runs_mutate:
        snapshot.restore()
    else:  # nothing in the original writes parameters, so the converted graph must not either
        changed = snapshot.changes(model.outputs, model.params)
        if changed:
            snapshot.restore()
            return _fail(target, changed[0].kind, "running the converted graph: " + changed[0].message)
    shapes = [(tuple(a.shape), tuple(r.shape)) for a, r in zip(actual, reference) if a.shape != r.shape]
    if shapes:
        return _fail(target, "bad-outputs", "output shapes differ (converted, original): {}".format(shapes))
    errors, worst = _compare(reference, actual, target.tolerance, noise)
    if worst:
        return _fail(target, "mismatch", worst, errors)
    return Outcome(target.name, "converted", errors=errors,
                   changed=_functions(functions) != _functions(snapshot.functions))


def _functions(functions):
    return Counter((f.info.type_name, repr(sorted(f.info.args.items()))) for f in functions)
