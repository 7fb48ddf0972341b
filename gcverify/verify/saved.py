"""The saved check: what you ship computes exactly what was verified.

The converted graph is written with NNabla's ``.nnp`` saver (network, parameters and an
executor naming its inputs and outputs, :mod:`.nnp_file`), reloaded with NNabla's loader
into a private scope, and run on the same data as the in-memory converted graph. It passes
when every output is identical bit for bit and the loaded graph holds the same functions
with the same arguments (so a ``channel_last=True`` that did not survive the file is caught
by name, not only by its numbers). On CPU a channel-last graph runs through
``converters.layout_emulation.cpu_runnable``, the loaded one too: the file keeps
``channel_last=True`` (what a cudnn user runs), so the loaded graph needs the same
emulation, and both emulations are the same deterministic code.

Cost: writing and reloading ResNet-50 (98 MB of parameters) takes about a second and holds a
second copy of its parameters while it runs, so the matrix's default (``auto``) checks graphs
up to :data:`AUTO_MAX_BYTES` of parameters and says why it skipped larger ones; ``all``
checks every row, ``off`` none. The in-memory outputs are those the numeric check computed.
"""
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from converters.graph_view import GraphView

from ..core.conversion import Conversion
from .execution import input_arrays, on_cpu, run_conversion, runnable_outputs
from .nnp_file import EXECUTOR, NETWORK, UnsaveableGraph, load_network, plan_layout, write_nnp
from .results import MAX_LINES, CheckResult

__all__ = ["SavedOptions", "saved_check", "function_signatures", "SAVED_MODES", "AUTO_MAX_BYTES"]

SAVED_MODES = ("auto", "all", "off")
AUTO_MAX_BYTES = 64 * 2 ** 20


@dataclass(frozen=True)
class SavedOptions:
    """How the saved check runs. ``mode``: ``auto`` (graphs holding up to ``max_bytes`` of
    parameters), ``all`` or ``off``. ``path``: write the file there and keep it (the
    ``convert`` command ships what it checked); default: a temporary directory. The names go
    into the file (see :mod:`.nnp_file`). ``unsaveable_fails``: a graph NNabla's format
    cannot hold fails the check (the matrix only notes it: the graph may be right in memory)."""

    mode: str = "auto"
    max_bytes: int = AUTO_MAX_BYTES
    path: Optional[str] = None
    network: str = NETWORK
    executor: str = EXECUTOR
    input_names: Optional[Tuple[str, ...]] = None
    output_names: Optional[Tuple[str, ...]] = None
    unsaveable_fails: bool = False

    def __post_init__(self):
        if self.mode not in SAVED_MODES:
            raise ValueError("saved check mode must be one of {}, not {!r}".format(
                ", ".join(SAVED_MODES), self.mode))


def function_signatures(outputs):
    """A Counter of ``(type, arguments)`` of the functions computing ``outputs``. A Reshape's
    shape is its output's shape: NNabla's writer stores a ``-1`` resolved."""
    return Counter((f.info.type_name, repr(sorted(_args(f).items())))
                   for f in GraphView(outputs, {}).functions)


def _args(f):
    if f.info.type_name == "Reshape":
        return dict(f.info.args, shape=list(f.outputs[0].shape))
    return f.info.args


def _result(passed, summary, details=(), **figures):
    return CheckResult("saved", passed, summary, list(details), figures)


def saved_check(conversion, model, data, expected=None, emulate=False, options=SavedOptions()):
    """Write ``conversion`` (a Conversion of ``model``) as ``.nnp``, reload it and compare its
    outputs on ``data`` (the model's input data) with ``expected``, the in-memory converted
    graph's outputs in the original layout (computed here when None). ``emulate``: the
    converter's ``cpu_emulation``. Never raises for a failed check."""
    if options.mode == "off":
        return _result(True, "not checked (off)", saved="off")
    try:
        layout = plan_layout(conversion, options.network, options.executor,
                             options.input_names, options.output_names)
    except UnsaveableGraph as e:
        return _result(not options.unsaveable_fails, "cannot be saved as .nnp: {}".format(e),
                       saved="unsaveable: {}".format(e))
    size = layout.parameter_bytes
    if options.mode == "auto" and size > options.max_bytes:
        note = "skipped: {:.0f} MB > {:.0f} MB (--gc-saved=all)".format(
            size / 2 ** 20, options.max_bytes / 2 ** 20)
        return _result(True, note, saved=note)
    t0 = time.perf_counter()
    try:
        if expected is None:
            expected = run_conversion(conversion, data, runnable_outputs(conversion, on_cpu(), emulate))
        if options.path:
            return _compare(conversion, data, expected, emulate, layout, options.path, t0)
        with tempfile.TemporaryDirectory(prefix="gcverify-saved-") as tmp:
            return _compare(conversion, data, expected, emulate, layout,
                            os.path.join(tmp, "converted.nnp"), t0)
    except Exception as e:  # NNabla's saver and loader raise many types
        return _result(False, "NNabla could not save, reload and run the converted graph: {}: {}".format(
            type(e).__name__, str(e).strip()[:300]), saved="error: {}".format(type(e).__name__))


def _compare(conversion, data, expected, emulate, layout, path, t0):
    write_nnp(path, conversion, layout, extra_names=conversion.names)
    batch = conversion.inputs[0].shape[0] if conversion.inputs and conversion.inputs[0].ndim else None
    loaded = load_network(path, layout.network, layout.executor, batch_size=batch)
    arrays = dict(zip(layout.input_names, input_arrays(conversion, data)))
    reloaded = Conversion(loaded.outputs, loaded.inputs, parameters=loaded.parameters,
                          input_data=[arrays[n] for n in loaded.data_names],
                          output_perms=conversion.output_perms)
    actual = run_conversion(reloaded, data, runnable_outputs(reloaded, on_cpu(), emulate))
    seconds = time.perf_counter() - t0
    figures = dict(saved_bytes=os.path.getsize(path), saved_time=seconds)
    # a random function (it has a seed) draws anew in the reloaded graph: compare structure only
    random = [f.info.type_name for f in GraphView(conversion.outputs, {}).functions if "seed" in f.info.args]
    details = [] if random else _differences(actual, expected, layout.output_names)
    before, after = function_signatures(conversion.outputs), function_signatures(loaded.outputs)
    if before != after:
        details += ["in memory only: {} {}".format(t, a) for (t, a), n in (before - after).items()][:3]
        details += ["in the file only: {} {}".format(t, a) for (t, a), n in (after - before).items()][:3]
    where = "{} (network {!r}, executor {!r}: data {}, outputs {})".format(
        os.path.basename(path), layout.network, layout.executor, ", ".join(loaded.data_names),
        ", ".join(loaded.output_names))
    if details:
        return _result(False, "the reloaded .nnp differs from the in-memory converted graph: " + details[0],
                       details[1:MAX_LINES] + [where], saved="differs", **figures)
    notes = [where, "{} functions, {} parameters ({:.1f} MB)".format(
        sum(after.values()), len(layout.parameters), layout.parameter_bytes / 2 ** 20)]
    if layout.renamed:
        notes.append("renamed for NNabla's nested scopes: " + ", ".join(
            "{} -> {}".format(a, b) for a, b in list(layout.renamed.items())[:3]))
    if random:
        return _result(True, "reloaded .nnp holds the same functions; outputs not compared: random "
                       "functions ({}) draw anew".format(", ".join(sorted(set(random)))), notes,
                       saved="same functions (random: outputs not compared)", **figures)
    return _result(True, "reloaded .nnp gives identical outputs ({:.2f} s)".format(seconds), notes,
                   saved="identical", **figures)


def _differences(actual, expected, names):
    """Lines naming each output whose bits differ (shape, count, largest difference)."""
    lines = []
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.ascontiguousarray(a), np.ascontiguousarray(e)
        if a.shape == e.shape and a.dtype == e.dtype and a.tobytes() == e.tobytes():
            continue
        name = names[i] if i < len(names) else str(i)
        if a.shape != e.shape:
            lines.append("output {}: shape {} instead of {}".format(name, a.shape, e.shape))
            continue
        differ = ~((a == e) | (np.isnan(a) & np.isnan(e)))
        lines.append("output {}: {} of {} elements differ, max |difference| {:.3g}".format(
            name, int(differ.sum()), a.size, float(np.nanmax(np.abs(a.astype(np.float64) - e)))))
    return lines

