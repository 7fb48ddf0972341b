"""One case of the matrix, (converter, model, device), run with every check into a Row.

For every case the model is copied faithfully (:mod:`.model_copy`: new inputs, every
parameter and constant copied, random functions with fixed seeds, functions created on the
case's device), so a converter that mutates its input can never spoil the next case, and
the copy is what "the original" means: it computes the model's reference outputs (measured
once per model and device, :mod:`.model_facts`; for a conversion that changes the numbers
by design, the spec's ``reference`` hook or declared ``quantization`` gives the outputs
expected instead, computed independently of the converter), and it must be unchanged after
the conversion. A model on which a comparison proves nothing (no output depends on the input)
fails every case with that reason. Then: convert (timed), check the original is untouched
(:mod:`.snapshot`), check the wiring, the random functions and the layer rules (every kept
function judged, :mod:`.structure`), evaluate the converted graph (through the CPU
channel-last emulation where needed), compare numbers (locating the first diverging
function on failure, and naming constants the conversion no longer reads), time both graphs
where a speed expectation applies (:mod:`.timing`: met, missed or inconclusive), and compare
with the baseline. A peer's failures are expected (the plugin turns them into xfail).
"""
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import List, Optional

import nnabla as nn
import numpy as np

from converters.fast_rebuild import fast_nnabla_imports
from converters.graph_view import GraphView

from ..core.conversion import as_conversion
from ..core.expectations import Tolerance
from ..core.running import evaluate, feed
from ..core.wiring_rules import NoGradients
from ..report.baseline import Thresholds
from ..report.files import environment
from ..report.row import Row
from .details import attach_details
from .execution import feed_conversion, guess_layouts, run_conversion, runnable_outputs
from .gradients import gradients_check
from .low_rank_check import low_rank_check
from .model_copy import copy_model
from .model_facts import FactsCache
from .numeric import locate_divergence, numeric_check
from .quant_check import quantization_check
from .results import CheckResult
from .saved import SavedOptions, saved_check
from .snapshot import Snapshot, describe_leaf
from .speed import speed_check
from .structure import changed_functions, layer_check, random_functions_check, wiring_check

__all__ = ["CaseSettings", "Verdict", "run_case", "convert_model", "divergence", "diagnostic_tolerance",
           "untouched_check"]

MAX_FAILURES_SHOWN = 4


@dataclass(frozen=True)
class CaseSettings:
    """How cases run: the budget of speed checks (paired rounds, seconds) and whether an
    inconclusive speed verdict fails (``speed_strict``, for quiet benchmark machines), the
    baseline (a :class:`~gcverify.report.baseline.Baseline`) and its thresholds, a directory
    for graph pictures, the saved check's options (:class:`~gcverify.verify.saved.SavedOptions`)
    and the per-process cache of model facts."""

    speed_rounds: int = 80
    speed_seconds: float = 20.0
    speed_strict: bool = False
    speed_peers: bool = False
    tolerance: Optional[dict] = None  # overrides of rows with the float32 (noise floor) tolerance
    baseline: object = None
    thresholds: Thresholds = Thresholds()
    graphs: Optional[str] = None
    saved: SavedOptions = SavedOptions()
    facts: FactsCache = field(default_factory=FactsCache)
    details: str = "failed"  # "all": graph pictures and error profile on every row (HTML report)


@dataclass
class Verdict:
    """A finished case: its row, the failed checks' messages, or why it was skipped. A
    ``peer`` verdict's failures are expected failures (NNabla's built-ins)."""

    row: Row
    failures: List[str] = field(default_factory=list)
    skip: Optional[str] = None
    peer: bool = False

    def fail(self, item):
        self.failures.append(item.message() if isinstance(item, CheckResult) else str(item))

    def summary(self):
        """The failures' first lines, joined: the row's note."""
        return "; ".join(f.splitlines()[0] for f in self.failures)

    def message(self):
        head = "{} on {} ({}): {} check(s) failed".format(
            self.row.converter, self.row.model, self.row.device, len(self.failures))
        shown = self.failures[:MAX_FAILURES_SHOWN]
        more = len(self.failures) - len(shown)
        return "\n".join([head] + shown + (["... {} more".format(more)] if more > 0 else []))


def convert_model(spec, model):
    """Run ``spec.convert`` on ``model``; returns (Conversion, seconds). Layouts the
    conversion does not state are guessed from shapes (:func:`.execution.guess_layouts`)."""
    t0 = time.perf_counter()
    conversion = as_conversion(spec.convert(model), model)
    conversion.seconds = time.perf_counter() - t0
    return guess_layouts(conversion, model), conversion.seconds


def _crash(e, peer):
    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        f = frames[-1]
        where = " (at {}:{})".format(f.filename.rsplit("/", 1)[-1], f.lineno)
    who = "NNabla's converter" if peer else "the conversion"
    return "{} raised {}: {}{}".format(who, type(e).__name__, str(e).strip()[:300], where)


def run_case(spec, load_model, device, case_id, model_label, settings=CaseSettings()):
    """Everything about one case; never raises for a failed check. ``load_model()`` gives
    the built model (cached by the caller; it may raise, which fails the case)."""
    with fast_nnabla_imports():  # copies, snapshots and reads of values call into NNabla a lot
        return _case(spec, load_model, device, case_id, model_label, settings)


def _case(spec, load_model, device, case_id, model_label, settings):
    row = Row(case_id, converter=spec.name, kind=spec.kind, model=model_label, device=device.name,
              device_label=device.label, **environment())
    verdict = Verdict(row, peer=spec.kind == "peer")
    reason = device.unavailable()
    if reason:
        verdict.skip = reason
        return verdict
    ctx = device.context()
    with nn.context_scope(ctx):
        try:  # the model itself must build, copy and run before a converter can be judged
            model = load_model()
            facts = settings.facts.get(model, device.label, ctx)
            original = copy_model(model, ctx)
            # its first draws made the reference: keep both graphs in step (a reference hook
            # computes its own, from the copy as built)
            if facts.stochastic and spec.reference is None:
                evaluate(original.outputs, original.inputs, original.input_data)
        except Exception as e:
            verdict.peer = False  # not the peer's fault: fail, do not xfail
            verdict.fail("the model could not be built and run: {}: {}".format(type(e).__name__, e))
            return verdict
        row.notes = facts.notes() or None
        vacuous = facts.vacuous()
        if vacuous:
            verdict.peer = False
            verdict.fail(CheckResult("reference", False, vacuous))
            return verdict
        reference = facts.reference
        if spec.reference is not None:  # numbers changed by design: the verifier's own expectation
            reference = _independent_reference(spec, original, verdict)
            if reference is None:
                return verdict
        noise = lambda: settings.facts.noise_floor(model, device.label, ctx).floors  # noqa: E731
        _run(spec, device, model, original, reference, noise, verdict, settings)
    return verdict


def _independent_reference(spec, original, verdict):
    """``spec.reference(original)``: the outputs the conversion must compute (see
    :class:`~gcverify.core.registry.ConverterSpec`); None, with the case failed, when it
    cannot be computed (the verifier's fault, not the converter's: never an xfail)."""
    try:
        return [np.asarray(a) for a in spec.reference(original)]
    except Exception as e:
        verdict.peer = False
        verdict.fail("the reference outputs of {} could not be computed: {}: {}".format(
            spec.name, type(e).__name__, e))
        return None


def untouched_check(before, original):
    """``before`` (a Snapshot of ``original``) against the model now."""
    problems = before.changes(original.outputs, original.params)
    if not problems:
        return CheckResult("untouched", True, "original graph, parameters, constants and global scope unchanged")
    return CheckResult("untouched", False, "the conversion changed its input: " + problems[0].message,
                       [p.message for p in problems[1:]])


def _tolerance(spec, model, settings):
    tol = spec.tolerance_for(model)
    if settings.tolerance and spec.tolerance.noise is not None:  # --gc-tolerance: the user's choice
        tol = tol.merged(settings.tolerance)
    return tol


def _run(spec, device, model, original, reference, noise, verdict, settings):
    row = verdict.row
    tol = _tolerance(spec, original, settings)
    row.tolerance, row.tolerance_preset = tol.describe(), tol.name
    before = Snapshot.take(original.outputs, original.params, original.inputs)
    original_view = GraphView(original.outputs, original.params)
    row.functions_before = len(original_view)
    row.histogram_before = dict(original_view.histogram())
    try:
        conversion, row.conversion_time = convert_model(spec, original)
    except Exception as e:
        return verdict.fail(_crash(e, verdict.peer))
    untouched = untouched_check(before, original)
    if not untouched.passed:
        verdict.fail(untouched)
    converted_view = GraphView(conversion.outputs, conversion.parameters)
    constants = [v for v in original_view.inputs if v not in set(original.inputs)]
    for check in (wiring_check(converted_view, conversion.inputs, constants + list(original_view.parameters)),
                  random_functions_check(original_view, converted_view)):
        if not check.passed:
            verdict.fail(check)
    layers = layer_check(original_view, converted_view, spec.layers, conversion,
                         lambda kind, name: original.accepts_kept(spec.name, kind, name))
    row.update(layers.figures)
    row.functions_changed, row.functions_added = changed_functions(original_view, converted_view,
                                                                   conversion.var_map)
    row.notes = (row.notes or []) + list(conversion.notes) or None
    if not layers.passed:
        verdict.fail(layers)
    # every new parameter needs a gradient exactly when what it derives from does (verify/gradients.py)
    gradients = gradients_check(original_view, converted_view, conversion,
                                frozen=any(isinstance(r, NoGradients) for r in spec.layers))
    row.update(gradients.figures)
    if not gradients.passed:
        verdict.fail(gradients)
    _write_graphs(settings, row, original, conversion)
    outputs = conversion.outputs
    try:
        outputs = runnable_outputs(conversion, device.name == "cpu", spec.cpu_emulation)
        t0 = time.perf_counter()
        actual = run_conversion(conversion, original.input_data, outputs)
        row.first_forward_time = time.perf_counter() - t0
    except Exception as e:
        return verdict.fail("evaluating the converted graph failed: " + _crash(e, False))
    row.output_checksum = "{:08x}".format(zlib.crc32(b"".join(
        np.ascontiguousarray(a, np.float32).tobytes() for a in actual)))
    floors = noise() if tol.noise is not None else None
    if spec.quantization is not None:  # judged against the declared spec, by the verifier's own reference
        numeric = quantization_check(spec.quantization, model, original, conversion, actual, reference,
                                     tol, floors, device.context(),
                                     rerun=lambda data: run_conversion(conversion, data, outputs))
    elif spec.low_rank is not None:  # a lossy split: the verifier's own SVD gives bound and reference
        numeric = low_rank_check(spec.low_rank, model, original, conversion, actual, reference, tol, floors,
                                 device.context())
    else:
        numeric = numeric_check(actual, reference, tol, floors)
    row.update(numeric.figures)
    if not numeric.passed:
        # (against a hook's reference the original's intermediate values are not what to expect)
        if conversion.var_map and outputs is conversion.outputs and spec.reference is None and spec.low_rank is None:
            where = divergence(original, conversion, diagnostic_tolerance(tol, numeric.figures), original_view)
            numeric.details.insert(0, where or "first divergence: no intermediate could be compared")
        numeric.details[:0] = _constants_gone(original_view, converted_view, constants, original.inputs)
        verdict.fail(numeric)
    # --- saved: the graph written as .nnp and reloaded computes the same (verify/saved.py);
    # only for a row that passed so far, reusing the outputs just computed
    if not verdict.failures:
        saved = saved_check(conversion, original, original.input_data, actual, spec.cpu_emulation,
                            settings.saved)
        row.update(saved.figures)
        if not saved.passed:
            verdict.fail(saved)
    # the HTML report's graph pictures and per-layer error profile (verify/details.py); before
    # timing, which forwards the two graphs unequal numbers of times (random draws would drift)
    attach_details(row, original, conversion, diagnostic_tolerance(tol, numeric.figures),
                   settings.details == "all" or bool(verdict.failures))
    _speed(spec, device, original, conversion, outputs, verdict, settings)
    _baseline(settings, verdict)


def _constants_gone(original_view, converted_view, constants, inputs):
    """Lines naming each constant of the original that the converted graph no longer reads."""
    read = set(converted_view.inputs) | set(converted_view.parameters)
    return ["{} is not read by the converted graph (dropped or replaced)".format(
        describe_leaf(original_view, v, inputs)) for v in constants if v not in read]


def diagnostic_tolerance(tol, figures):
    """What locating the first diverging intermediate compares with: ``tol`` itself, or for a
    multiple of the outputs' noise floor (intermediates have none measured) that multiple of
    the noisiest output's floor relative to its scale, a fixed relative tolerance."""
    if tol.noise is None:
        return tol
    return Tolerance(atol=tol.noise * (figures.get("noise_floor") or 0.0) + tol.atol, name=tol.name)


def divergence(original, conversion, tol, view):
    """Where the converted graph's intermediate values first leave ``tol`` (a line for the
    failure message), found through ``conversion.var_map``; None when nothing compares."""
    def feed_both():
        feed(original.inputs, original.input_data)
        feed_conversion(conversion, original.input_data)
    try:
        return locate_divergence(original.outputs, conversion.outputs, conversion.var_map,
                                 feed_both, tol, describe=view.describe)
    except Exception as e:  # a diagnosis must never hide the failure it explains
        return "first divergence: not located ({}: {})".format(type(e).__name__, e)


def _speed(spec, device, original, conversion, outputs, verdict, settings):
    expectation = spec.speed_on(device.name)
    if expectation is None or outputs is not conversion.outputs:
        return  # no expectation here, or only an emulation of the real graph runs here
    if spec.kind == "peer" and not settings.speed_peers:
        verdict.row.speed_note = "NNabla's peer: not timed (--gc-speed-peers=yes times it)"
        return
    reason = device.speed_unavailable(expectation)
    if reason:
        verdict.row.speed_note = reason
        return
    if expectation.type_config != "float":  # e.g. half precision for TensorCores
        ctx = device.context(expectation.type_config)
        with nn.context_scope(ctx):
            original = copy_model(original, ctx)
            conversion, _ = convert_model(spec, original)
    feed(original.inputs, original.input_data)
    feed_conversion(conversion, original.input_data)
    result = speed_check(lambda: nn.forward_all(list(original.outputs)),
                         lambda: nn.forward_all(list(conversion.outputs)), expectation, device, settings)
    verdict.row.update(result.figures)
    if not result.passed:
        verdict.fail(result)


def _baseline(settings, verdict):
    if settings.baseline is None:
        return
    comparison = settings.baseline.compare(verdict.row, settings.thresholds)
    verdict.row.baseline = comparison.status + (": " + comparison.note if comparison.note else "")
    if comparison.regressed:
        verdict.fail(CheckResult("baseline", False, "regression against {}: {}".format(
            settings.baseline.path, comparison.problems[0]), comparison.problems[1:]))


def _write_graphs(settings, row, original, conversion):
    if not settings.graphs:
        return
    from ..report.graphs import write_graph
    try:
        row.graphs = [write_graph(original.outputs, original.params, settings.graphs, row.id + "-before"),
                      write_graph(conversion.outputs, conversion.parameters, settings.graphs, row.id + "-after")]
    except OSError as e:
        row.graphs_error = str(e)
