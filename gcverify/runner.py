"""Worker side: run one (converter, model, device) case and describe it as a plain-JSON row.

For every case the cached model is copied afresh (new inputs, copied parameters, functions
created on the case's device), so a converter that mutates its input can never spoil the
next case, and the copy is what "the original" means: its fresh forward is the reference,
and it must be unchanged after the conversion. Then: convert (timed), check the original is
untouched, check the layer rules, evaluate the converted graph (through the CPU
channel-last emulation where needed), compare numbers (locating the first diverging
function on failure), time both graphs where a speed expectation applies, and compare with
the baseline. A peer's failures are expected failures (xfail) with the diagnosis.
"""
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import List, Optional

import nnabla as nn
import numpy as np

from converters.graph_view import GraphView
from converters.rewrite import GraphPass, run_passes

from .checks import (CheckResult, GraphSnapshot, layer_check, locate_divergence, numeric_check,
                     speed_check, time_interleaved, untouched_check, wiring_check)
from .devices import Device
from .evaluation import evaluate, feed, feed_conversion, guess_layouts, run_conversion, runnable_outputs
from .models import Model
from .registry import as_conversion
from .report import environment

__all__ = ["clone_model", "run_case", "Verdict", "enforce", "feed", "evaluate", "convert_model",
           "divergence"]

MAX_FAILURES_SHOWN = 4


class _FreshLeaves(GraphPass):
    """Copies a graph onto new input variables and copies of its parameters."""

    name = "fresh_copy"

    def input_map(self, view, b, plan):
        fresh = {v: nn.Variable(v.shape, need_grad=v.need_grad) for v in view.inputs}
        fresh.update({v: nn.Variable.from_numpy_array(v.d.copy(), need_grad=v.need_grad)
                      for v in view.parameters})
        return fresh


def clone_model(model, context=None):
    """A fresh, independent copy of ``model`` whose functions run on ``context``."""
    result = run_passes([_FreshLeaves()], list(model.outputs), params=model.params, context=context)
    leaves = result.input_map
    params = {name: leaves[v] for name, v in model.params.items() if v in leaves}
    return Model(model.name, [leaves.get(x, x) for x in model.inputs], list(result.outputs),
                 list(model.input_data), params, dict(model.tolerance), model.description)


def convert_model(spec, model):
    """Run ``spec.convert`` on ``model`` (NNabla peers get a throwaway parameter scope
    inside their convert); returns (Conversion, seconds). Layouts the conversion does not
    state are guessed from shapes (:func:`gcverify.evaluation.guess_layouts`)."""
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


@dataclass
class Verdict:
    row: dict
    failures: List[str] = field(default_factory=list)
    skip: Optional[str] = None
    peer: bool = False

    def message(self):
        head = "{} on {} ({}): {} check(s) failed".format(
            self.row["converter"], self.row["model"], self.row["device"], len(self.failures))
        shown = self.failures[:MAX_FAILURES_SHOWN]
        more = len(self.failures) - len(shown)
        return "\n".join([head] + shown + (["... {} more".format(more)] if more > 0 else []))


def _fail(verdict, item):
    verdict.failures.append(item.message() if isinstance(item, CheckResult) else str(item))


def run_case(session, case):
    """Everything about one case; never raises for a failed check (see :func:`enforce`)."""
    spec = session.converters.get(case.converter)
    device = Device.select(case.device, session.worker_id, session.settings.gpus)
    row = dict(id=case.id, converter=spec.name, kind=spec.kind, model=case.model_label,
               device=case.device, device_label=device.label, **environment())
    verdict = Verdict(row, peer=spec.kind == "peer")
    reason = device.unavailable()
    if reason:
        verdict.skip = reason
        return verdict
    ctx = device.context()
    with nn.context_scope(ctx):
        try:  # the model itself must build, copy and run before a converter can be judged
            original = clone_model(session.cache.get(case.model), ctx)
            reference = evaluate(original.outputs, original.inputs, original.input_data)
        except Exception as e:
            verdict.peer = False  # not the peer's fault: fail, do not xfail
            _fail(verdict, "model {!r} could not be built and run: {}: {}".format(
                case.model, type(e).__name__, e))
            return verdict
        _run(session, spec, device, original, reference, verdict)
    return verdict


def _run(session, spec, device, original, reference, verdict):
    row = verdict.row
    tol = spec.tolerance_for(original)
    row["tolerance"] = tol.describe()
    row["tolerance_preset"] = tol.name
    before = GraphSnapshot.take(original.outputs, original.params)
    original_view = GraphView(original.outputs, original.params)
    row["functions_before"] = len(original_view)
    row["histogram_before"] = dict(original_view.histogram())
    try:
        conversion, row["conversion_time"] = convert_model(spec, original)
    except Exception as e:
        return _fail(verdict, _crash(e, verdict.peer))
    untouched = untouched_check(before, GraphSnapshot.take(original.outputs, original.params))
    if not untouched.passed:
        _fail(verdict, untouched)
    converted_view = GraphView(conversion.outputs, conversion.parameters)
    wiring = wiring_check(converted_view, conversion.inputs)
    if not wiring.passed:
        _fail(verdict, wiring)
    layers = layer_check(original_view, converted_view, spec.layers)
    row.update(layers.figures)
    if not layers.passed:  # say why the converter left what the rules wanted gone
        layers.details[len(spec.layers):len(spec.layers)] = _kept(conversion.events)
        _fail(verdict, layers)
    _write_graphs(session, row, original, conversion)
    outputs = conversion.outputs
    try:
        outputs = runnable_outputs(conversion, device.name == "cpu", spec.cpu_emulation)
        t0 = time.perf_counter()
        actual = run_conversion(conversion, original.input_data, outputs)
        row["first_forward_time"] = time.perf_counter() - t0
    except Exception as e:
        return _fail(verdict, "evaluating the converted graph failed: " + _crash(e, False))
    row["output_checksum"] = "{:08x}".format(zlib.crc32(b"".join(
        np.ascontiguousarray(a, np.float32).tobytes() for a in actual)))
    numeric = numeric_check(actual, reference, tol)
    row.update(numeric.figures)
    if not numeric.passed:
        if conversion.var_map and outputs is conversion.outputs:
            where = divergence(original, conversion, tol, original_view)
            numeric.details.insert(0, where or "first divergence: no intermediate could be compared")
        _fail(verdict, numeric)
    _speed(session, spec, device, original, conversion, outputs, verdict)
    _baseline(session, verdict)


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


def _speed(session, spec, device, original, conversion, outputs, verdict):
    expectation = spec.speed_on(device.name)
    if expectation is None or outputs is not conversion.outputs:
        return  # no expectation here, or only an emulation of the real graph runs here
    reason = device.speed_unavailable(expectation)
    if reason:
        verdict.row["speed_note"] = reason
        return
    if expectation.type_config != "float":  # e.g. half precision for TensorCores
        ctx = device.context(expectation.type_config)
        with nn.context_scope(ctx):
            original = clone_model(original, ctx)
            conversion, _ = convert_model(spec, original)
    feed(original.inputs, original.input_data)
    feed_conversion(conversion, original.input_data)
    t_a, t_b = time_interleaved(lambda: nn.forward_all(list(original.outputs)),
                                lambda: nn.forward_all(list(conversion.outputs)),
                                device.synchronizer(), warmup=1,
                                repeats=session.settings.speed_repeats)
    result = speed_check(t_a, t_b, expectation)
    verdict.row.update(result.figures)
    if not result.passed:
        _fail(verdict, result)


def _baseline(session, verdict):
    if session.baseline is None:
        return
    comparison = session.baseline.compare(verdict.row, session.settings.thresholds)
    verdict.row["baseline"] = comparison.status + (": " + comparison.note if comparison.note else "")
    if comparison.regressed:
        _fail(verdict, CheckResult("baseline", False, "regression against {}: {}".format(
            session.baseline.path, comparison.problems[0]), comparison.problems[1:]))


def _write_graphs(session, row, original, conversion):
    directory = session.settings.graphs if session.settings else None
    if not directory:
        return
    from .graphs import write_graph
    try:
        row["graphs"] = [write_graph(original.outputs, original.params, directory, row["id"] + "-before"),
                         write_graph(conversion.outputs, conversion.parameters, directory, row["id"] + "-after")]
    except OSError as e:
        row["graphs_error"] = str(e)


def enforce(verdict):
    """Turn a verdict into the test's outcome: skip, xfail (a peer's failure), or fail."""
    __tracebackhide__ = True
    import pytest
    if verdict.skip:
        verdict.row["message"] = verdict.skip
        pytest.skip(verdict.skip)
    if not verdict.failures:
        return
    verdict.row["message"] = "; ".join(f.splitlines()[0] for f in verdict.failures)
    if verdict.peer:  # the reason shows in one line of the summary: lead with the diagnosis
        pytest.xfail("expected failure of NNabla's built-in (peer): " + verdict.row["message"])
    pytest.fail(verdict.message(), pytrace=False)


ROW_PROPERTY = "gcverify.row"
_JUNIT_FIELDS = ("converter", "model", "device", "outcome", "functions_before", "functions_after",
                 "max_abs_error", "max_rel_error", "tolerance", "conversion_time", "speed_ratio")


def outcome_of(report):
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def attach_row(item, report, row):
    """Put the finished row on the test report as plain JSON (what xdist carries to the
    controller) and on the item's user properties (what JUnit XML records)."""
    import json
    row["outcome"] = outcome_of(report)
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        row["message"] = str(report.longrepr[2]).replace("Skipped: ", "", 1)
    elif report.failed and not row.get("message"):
        row["message"] = str(getattr(report, "longreprtext", "") or "").strip().splitlines()[-1:]
        row["message"] = row["message"][0] if row["message"] else "failed"
    text = json.dumps(row, sort_keys=True, default=str)
    props = [(ROW_PROPERTY, text)] + [("gc_" + k, row.get(k)) for k in _JUNIT_FIELDS if row.get(k) is not None]
    report.user_properties.extend(props)
    item.user_properties.extend(props)
