"""Quantizing conversions judged against their declared spec, by the verifier's own reference
(:mod:`.quant_reference`), not by their distance to the float model.

1. Every weight (and bias) of a layer the spec covers, as the converted graph computes it,
   must equal the verifier's quantization of the original weight; a layer left float, one
   bit coarser, a doubled step, floor instead of round-to-nearest or a wrong zero point each
   leave the tensor off the declared grid, and the message names it.
2. Every activation the spec covers must be on its grid (multiples of the step, in range).
3. The converted outputs must match the reference forward (the original with the spec
   applied by the verifier) within the float32 noise floor.
4. The same on inputs ``WIDER`` times the calibration data (the wide probe). Ranges are
   calibrated on the model's data, so on that data no calibrated clip is ever reached: a
   quantizer that lost its clip would pass. Wider inputs leave the calibrated ranges, and the
   converted graph must clip where the declared spec does. Skipped (said in the figures) for
   graphs with random functions, whose draws would differ on a second forward, and for
   inputs that are not floating point (indices).

What users of quantizers read is reported, not judged: per-output SQNR in dB against the
float original, top-1 agreement of classifier outputs (2-D outputs with two or more
classes), and, on failure, the layers whose outputs drift most from the float original.
"""
import nnabla as nn
import numpy as np

from converters.graph_view import GraphView, parameter_source

from ..core.quantization import FixedPointSpec
from .model_copy import copy_model
from .numeric import numeric_check
from .profile import sqnr_db
from .quant_reference import record_ranges, reference_forward, reference_weights
from .results import MAX_LINES, CheckResult
from .structure import origins, random_signature

__all__ = ["quantization_check", "top1_agreement", "off_grid", "WIDER"]

WIDER = 2.0  # the wide probe's inputs: twice the calibration data


def top1_agreement(reference, actual):
    """Share of samples whose arg-max class agrees, for (N, C >= 2) outputs; else None."""
    if np.ndim(reference) != 2 or np.shape(reference)[1] < 2:
        return None
    return float(np.mean(np.argmax(reference, axis=1) == np.argmax(actual, axis=1)))


def off_grid(got, want, step=None):
    """Share of elements of ``got`` that differ from ``want`` (or, with only ``step``, that
    are not integer multiples of it), leaving out values within 2^-20 of a rounding tie."""
    got = np.asarray(got, np.float64)
    if want is None:
        k = got / step
        return float(np.mean(np.abs(k - np.round(k)) > 1e-4)) if got.size else 0.0
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        return 1.0
    return float(np.mean(got != want)) if got.size else 0.0


def _values(v):
    if v.parent is not None:
        nn.forward_all([v], clear_buffer=False)
    return v.d.copy()


def _weight_lines(spec, view, back, fixed):
    """Lines for weights and biases off their declared quantization, and how many were checked."""
    lines, checked = [], 0
    for f in view.functions:
        if f.info.type_name not in (spec.weight_functions if fixed else spec.functions):
            continue
        expected = reference_weights(f, spec) if (not fixed or spec.weight_bits) else {}
        g = back.get(f)
        for slot, role in ((1, "weight"), (2, "bias")):
            leaf = parameter_source(f.inputs[slot]) if slot < len(f.inputs) else None
            if leaf is None or leaf not in expected:
                continue
            checked += 1
            if g is None or slot >= len(g.inputs):
                lines.append("{} of {}: the layer is not in the converted graph".format(role, view.describe(f)))
                continue
            wrong = off_grid(_values(g.inputs[slot]), expected[leaf].reshape(f.inputs[slot].shape))
            if wrong > 0:
                lines.append("{} of {} is off the declared grid: {:.1%} of its elements differ from the "
                             "declared quantization{}".format(role, view.describe(f), wrong,
                                                               " (left float?)" if wrong > 0.5 else ""))
    return lines, checked


def _activation_lines(spec, view, conversion, converted):
    """Lines for activation outputs that are not on the declared grid."""
    if not isinstance(spec, FixedPointSpec) or not spec.activation_bits:
        return [], 0
    targets = [(f, conversion.var_map.get(f.outputs[0])) for f in view.functions
               if f.info.type_name in spec.activation_functions]
    targets = [(f, w) for f, w in targets if w is not None]
    saved = [(w, w.persistent) for _, w in targets]
    lines = []
    try:
        for w, _ in saved:
            w.persistent = True
        nn.forward_all(list(converted), clear_buffer=False)
        for f, w in targets:
            d = w.d
            signed = f.info.type_name not in spec.unsigned
            top = (2 ** (spec.activation_bits - 1) - 1 if signed else 2 ** spec.activation_bits - 1) * spec.activation_delta
            wrong = off_grid(d, None, spec.activation_delta)
            low = -top if signed else 0.0
            outside = float(np.mean((d < low) | (d > top))) if d.size else 0.0
            if wrong > 0 or outside > 0:
                lines.append("output of {} is off the declared grid (step {:g}, range [{:g}, {:g}]): {:.1%} "
                             "of its values are not multiples of the step, {:.1%} out of range".format(
                                 view.describe(f), spec.activation_delta, low, top, wrong, outside))
    finally:
        for w, flag in saved:
            w.persistent = flag
    return lines, len(targets)


def _wide_probe(spec, model, view, ranges, rerun, tol, noise, context):
    """Check 4 of the module docstring: a CheckResult, or the reason it was skipped."""
    if rerun is None:
        return "no way to rerun the converted graph"
    if random_signature(view):
        return "the graph has random functions"
    arrays = [np.asarray(x) for x in model.input_data]
    if not any(np.issubdtype(a.dtype, np.floating) for a in arrays):
        return "no floating-point input"
    wide = [a * WIDER if np.issubdtype(a.dtype, np.floating) else a for a in arrays]
    want = reference_forward(copy_model(model, context), spec, ranges, wide)
    got = rerun(wide)  # (every later check feeds the graph its own data again)
    return numeric_check(got, want, tol, None if noise is None else [n * WIDER for n in noise])


def quantization_check(spec, model, original, conversion, actual, float_reference, tol, noise, context=None,
                       rerun=None):
    """The check of one quantizing conversion (see the module docstring). ``model``: the
    cached model (fresh copies make the reference); ``original``: the case's copy, which
    the conversion's variable map refers to; ``actual``: the converted outputs; ``rerun``:
    ``data -> outputs`` of the converted graph, for the wide probe."""
    fixed = isinstance(spec, FixedPointSpec)
    view = GraphView(original.outputs, original.params)
    converted_view = GraphView(conversion.outputs, conversion.parameters)
    back = {f: g for g, f in origins(view, converted_view, conversion.var_map).items()}
    ranges = None if fixed else record_ranges(copy_model(model, context), spec.functions)
    reference = reference_forward(copy_model(model, context), spec, ranges)
    numeric = numeric_check(actual, reference, tol, noise)
    weights, n_weights = _weight_lines(spec, view, back, fixed)
    acts, n_acts = _activation_lines(spec, view, conversion, conversion.outputs)
    probe = _wide_probe(spec, model, view, ranges, rerun, tol, noise, context)
    if isinstance(probe, str):
        wide_lines, wide_figure = [], "skipped: " + probe
    else:
        wide_figure = "{} on inputs {:g}x the calibration data: max abs {:.3g}".format(
            "passed" if probe.passed else "failed", WIDER, probe.figures["max_abs_error"])
        wide_lines = [] if probe.passed else ["on inputs {:g}x the calibration data (the calibrated ranges "
                                              "exceeded), outputs differ from the declared quantization's "
                                              "reference: {}".format(WIDER, probe.summary.replace(
                                                  "outputs differ: ", ""))]
    sqnr = [s for s in (sqnr_db(a, e) for e, a in zip(float_reference, actual)) if s is not None]
    top1 = [t for t in (top1_agreement(e, a) for e, a in zip(float_reference, actual)) if t is not None]
    figures = dict(numeric.figures, sqnr_db=min(sqnr) if sqnr else None, top1_agreement=min(top1) if top1 else None,
                   quantized_tensors=n_weights + n_acts, off_grid_tensors=len(weights) + len(acts),
                   wide_probe=wide_figure)
    figures = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in figures.items()}
    problems = weights + acts + (wide_lines if numeric.passed else [])
    passed = numeric.passed and not problems
    head = "{} checked against the verifier's reference: {} tensor(s) checked, {} off their grid; {}".format(
        spec.describe(), n_weights + n_acts, len(problems), numeric.summary)
    if passed:
        return CheckResult("quantization", True, head, [], figures)
    summary = (problems[0] if problems else "outputs differ from the declared quantization's reference: "
               + numeric.summary.replace("outputs differ: ", ""))
    return CheckResult("quantization", False, summary, (problems[1:] + numeric.details)[:MAX_LINES], figures)
