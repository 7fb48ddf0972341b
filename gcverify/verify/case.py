"""One case of the matrix, (converter, model, device), run with every check into a Row.

For every case the model is copied faithfully (:mod:`.model_copy`: new inputs, every
parameter and constant copied, functions created on the case's device), so a converter that
mutates its input can never spoil the next case, and the copy is what "the original" means:
its fresh forward is the reference (unless the spec's ``reference`` hook computes the outputs
expected, independently of the converter, for a conversion that changes the numbers by
design), and it must be unchanged after the conversion. Then:
convert (timed), check the original is untouched (:mod:`.snapshot`), check the wiring and
the layer rules, evaluate the converted graph (through the CPU channel-last emulation where
needed), compare numbers (locating the first diverging function on failure), time both
graphs where a speed expectation applies, and compare with the baseline. A peer's failures
are expected (the plugin turns them into xfail with the diagnosis).
"""
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import List, Optional

import nnabla as nn
import numpy as np

from converters.graph_view import GraphView

from ..core.conversion import as_conversion
from ..report.baseline import Thresholds
from ..report.files import environment
from ..report.row import Row
from .execution import evaluate, feed, feed_conversion, guess_layouts, run_conversion, runnable_outputs
from .model_copy import copy_model
from .numeric import locate_divergence, numeric_check
from .results import CheckResult
from .snapshot import Snapshot
from .speed import speed_check, time_interleaved
from .structure import layer_check, wiring_check

__all__ = ["CaseSettings", "Verdict", "run_case", "convert_model", "divergence", "untouched_check"]

MAX_FAILURES_SHOWN = 4


@dataclass(frozen=True)
class CaseSettings:
    """How cases run: timed rounds of speed checks, the baseline (a
    :class:`~gcverify.report.baseline.Baseline`) and its thresholds, a directory for graph
    pictures."""

    speed_repeats: int = 5
    baseline: object = None
    thresholds: Thresholds = Thresholds()
    graphs: Optional[str] = None


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
            original = copy_model(load_model(), ctx)
            reference = None if spec.reference else evaluate(original.outputs, original.inputs,
                                                             original.input_data)
        except Exception as e:
            verdict.peer = False  # not the peer's fault: fail, do not xfail
            verdict.fail("model {!r} could not be built and run: {}: {}".format(
                model_label, type(e).__name__, e))
            return verdict
        if spec.reference is not None:  # numbers changed by design: the verifier's own expectation
            reference = _independent_reference(spec, original, verdict)
            if reference is None:
                return verdict
        _run(spec, device, original, reference, verdict, settings)
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


def _run(spec, device, original, reference, verdict, settings):
    row = verdict.row
    tol = spec.tolerance_for(original)
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
    wiring = wiring_check(converted_view, conversion.inputs)
    if not wiring.passed:
        verdict.fail(wiring)
    layers = layer_check(original_view, converted_view, spec.layers)
    row.update(layers.figures)
    if not layers.passed:  # say why the converter left what the rules wanted gone
        layers.details[len(spec.layers):len(spec.layers)] = _kept(conversion.events)
        verdict.fail(layers)
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
    numeric = numeric_check(actual, reference, tol)
    row.update(numeric.figures)
    if not numeric.passed:
        # (against a reference the original's intermediate values are not what to expect)
        if conversion.var_map and outputs is conversion.outputs and spec.reference is None:
            where = divergence(original, conversion, tol, original_view)
            numeric.details.insert(0, where or "first divergence: no intermediate could be compared")
        verdict.fail(numeric)
    _speed(spec, device, original, conversion, outputs, verdict, settings)
    _baseline(settings, verdict)


def _kept(events, limit=3):
    """What the converter reports it left alone, and why (our converters' Rewrite events)."""
    kept = [e for e in events if getattr(e, "action", None) == "kept"]
    lines = ["kept {}: {}".format(e.function, e.reason) for e in kept[:limit]]
    return lines + (["... and {} more kept".format(len(kept) - limit)] if len(kept) > limit else [])


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
    t_a, t_b = time_interleaved(lambda: nn.forward_all(list(original.outputs)),
                                lambda: nn.forward_all(list(conversion.outputs)),
                                device.synchronizer(), warmup=1, repeats=settings.speed_repeats)
    result = speed_check(t_a, t_b, expectation)
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
