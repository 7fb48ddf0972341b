"""``gcverify convert IN.nnp -o OUT.nnp --with bn_fold,channel_last``: convert, prove, ship.

1. check the arguments (converter names, the output path, the device) before any work;
2. load the network the file's first executor runs (or ``--network``) with NNabla's loader;
3. convert with the named registered converters in order and verify the result against the
   original with the matrix's own case run (:func:`gcverify.verify.case.run_case`: numbers
   within tolerance, layer rules, the original untouched, the wiring, speed where stated) on
   seeded inputs or the user's (``--inputs data.npz``); its saved check writes the file to
   ship, next to ``OUT.nnp``, reloads *that file* with NNabla's loader and requires identical
   outputs;
4. print the row and a short explanation; move the file onto ``OUT.nnp`` (``os.replace``)
   only when every check passed (``--force``: anyway, saying so).

Exit status 0: verified and written; 1: a check failed (nothing written without
``--force``); 2: a usage error (a bad argument, an unreadable file, an unknown network or
converter, an output that cannot be written). ``OUT.nnp`` is never half-written: an existing
one stays as it was on every failure, and the temporary file is removed.
"""
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace

from converters.graph_view import GraphView

from ..report.files import ReportFileError, check_writable
from ..report.table import table
from ..verify.case import CaseSettings, run_case
from ..verify.execution import input_arrays
from ..verify.devices import Device, UnknownDeviceError
from ..verify.nnp_file import UnsaveableGraph, layout_tag, plan_layout, write_nnp
from ..verify.saved import SavedOptions
from .chain import Chain
from .onnx_export import export_onnx, onnx_check, onnx_unavailable
from .source import (UsageError, converter_registry, converter_specs, inputs_for, load_source,
                     read_inputs)

__all__ = ["run", "Progress", "check_target", "EXIT_VERIFIED", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_VERIFIED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class Progress:
    """Steps on stderr with their elapsed time: ``loading x.nnp ... done (0.41 s)``."""

    def __init__(self, stream, quiet=False):
        self.stream, self.quiet = stream, quiet
        self._t0 = None

    def start(self, what):
        self.done()
        self._t0, self._what = time.perf_counter(), what
        self._say("{} ...".format(what))

    def note(self, text):
        self._say("  " + text)

    def done(self, outcome="done"):
        if self._t0 is not None:
            self._say("{}: {} ({:.2f} s)".format(self._what, outcome, time.perf_counter() - self._t0))
            self._t0 = None

    def _say(self, text):
        if not self.quiet:
            print("gcverify convert: " + text, file=self.stream, flush=True)


def check_target(output, source_path):
    """UsageError unless ``output`` is an ``.nnp`` path that can be written and is not the input."""
    if not output.endswith(".nnp"):
        raise UsageError("-o {}: the output must end in .nnp (NNabla's saver picks the format "
                         "from the extension)".format(output))
    if os.path.exists(source_path) and os.path.realpath(output) == os.path.realpath(source_path):
        raise UsageError("-o {} is the input file; write the converted network elsewhere".format(output))
    try:
        check_writable(output, "-o")
    except ReportFileError as e:
        raise UsageError(str(e)) from None


def _device(name):
    try:
        device = Device.select(name)
    except UnknownDeviceError as e:
        raise UsageError("--device: {}".format(e)) from None
    reason = device.unavailable()
    if reason:
        raise UsageError("--device {}: {}".format(name, reason))
    return device


def _temporary(output):
    """A new empty file beside ``output`` (same directory, so ``os.replace`` is atomic)."""
    directory = os.path.dirname(os.path.abspath(output))
    fd, path = tempfile.mkstemp(prefix="." + os.path.basename(output)[:-4] + ".", suffix=".nnp",
                                dir=directory)
    os.close(fd)
    return path


def _file_mode(output):
    if os.path.isfile(output):
        return os.stat(output).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _prepare(args, progress):
    """Everything before converting: specs, target, device, source, data (UsageError)."""
    if args.speed_repeats < 1:
        raise UsageError("--speed-repeats must be >= 1, got {}".format(args.speed_repeats))
    registry = converter_registry(args.converters_from or ())
    specs = converter_specs(registry, args.with_)
    check_target(args.output, args.input)
    if args.export == "onnx":
        try:
            check_writable(_onnx_path(args), "--export onnx:")
        except ReportFileError as e:
            raise UsageError(str(e)) from None
    device = _device(args.device)
    arrays, batch = read_inputs(args.inputs) if args.inputs else (None, None)
    progress.start("loading {}".format(args.input))
    source = load_source(args.input, args.network, args.seed, batch)
    if arrays is not None:
        source.model.input_data = inputs_for(arrays, source, args.inputs)
    progress.note("network {!r} of {} ({} functions), inputs {}".format(
        source.network, ", ".join(source.networks), len(GraphView(source.model.outputs, source.model.params)),
        ", ".join(
            "{} {}".format(n, tuple(x.shape)) for n, x in zip(source.input_names, source.model.inputs))))
    return specs, device, source


def run(args, out=None, err=None):
    """The command; returns the exit status. ``args`` as parsed by :mod:`gcverify.cli`."""
    out, err = out or sys.stdout, err or sys.stderr
    progress = Progress(err, args.quiet)
    tmp = None
    from nnabla.logger import logger
    level = logger.level
    logger.setLevel(logging.WARNING)  # NNabla's INFO lines would repeat our progress messages
    try:
        specs, device, source = _prepare(args, progress)
        n = len(specs)

        def on_step(i, spec):
            if spec is not None:
                progress.start("converting: step {}/{} {}".format(i + 1, n, spec.name))
            else:
                progress.start("verifying (numbers, layers, untouched original, saved file{})".format(
                    "" if args.no_speed else ", speed where stated"))
        chain = Chain(specs, on_step)
        spec = replace(chain.spec, speed=()) if args.no_speed else chain.spec
        tmp = _temporary(args.output)
        saved = SavedOptions(mode="all", path=tmp, network=source.network,
                             executor=source.executor or "runtime", input_names=tuple(source.input_names),
                             output_names=tuple(source.output_names), unsaveable_fails=True)
        settings = CaseSettings(speed_rounds=args.speed_repeats, saved=saved)
        label = os.path.basename(args.input)
        verdict = run_case(spec, lambda: source.model, device, "{}-{}-{}".format(spec.name, label, device.name),
                           label, settings)
        progress.done()
        return _finish(args, verdict, chain, saved, tmp, out, progress, source)
    except UsageError as e:
        progress.done("failed")
        print("gcverify convert: error: {}".format(e), file=err)
        return EXIT_USAGE
    finally:  # moved onto OUT when shipped; otherwise it must not stay behind
        progress.done("failed")  # a step still open here ended in an exception
        logger.setLevel(level)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _onnx_path(args):
    return os.path.splitext(args.output)[0] + ".onnx"


def _onnx(args, chain, source, tmp, out, progress):
    """``--export onnx``: the ONNX file written beside ``tmp`` and checked; returns
    ``(failure message or None, temporary ONNX path or None)``."""
    reason = onnx_unavailable()
    if reason:
        print("onnx: skipped: {}".format(reason), file=out)
        return None, None
    progress.start("exporting ONNX and running it in onnxruntime")
    path = tmp[:-4] + ".onnx"
    conversion = chain.conversion
    try:
        export_onnx(tmp, path, conversion.inputs[0].shape[0] if conversion.inputs else 1)
    except Exception as e:  # NNabla's exporter raises many types for what it cannot express
        progress.done("failed")
        return "NNabla's ONNX exporter failed: {}: {}".format(type(e).__name__, str(e).strip()[:300]), path
    layout = plan_layout(conversion, source.network, source.executor or "runtime",
                         source.input_names, source.output_names)
    feeds = dict(zip(layout.input_names, input_arrays(conversion, source.model.input_data)))
    result = onnx_check(path, feeds, source.model.forward(), conversion.output_perms,
                        chain.spec.tolerance_for(source.model))
    progress.done("done" if result.passed else "failed")
    print(result.message(), file=out)
    return (None if result.passed else result.summary), path


def _finish(args, verdict, chain, saved, tmp, out, progress, source):
    row = verdict.row
    row.outcome = "skipped" if verdict.skip else ("failed" if verdict.failures else "passed")
    row.message = verdict.skip or verdict.summary() or None
    print(table([row]), file=out)
    if verdict.skip:
        raise UsageError("the case was skipped: {}".format(verdict.skip))
    data = "inputs from {}".format(args.inputs) if args.inputs else "seeded inputs (seed {})".format(args.seed)
    if not verdict.failures and args.export == "onnx":
        failure, onnx_tmp = _onnx(args, chain, source, tmp, out, progress)
        try:
            if failure and not args.force:
                print("not written: {} (--force writes the .nnp anyway)".format(failure), file=out)
                return EXIT_FAILED
            if onnx_tmp and not failure:
                os.replace(onnx_tmp, _onnx_path(args))
                print("wrote {}".format(_onnx_path(args)), file=out)
        finally:
            if onnx_tmp and os.path.exists(onnx_tmp):
                os.unlink(onnx_tmp)
        if failure:  # --force: the verified .nnp is written, the failed ONNX is not
            _ship(args, tmp, progress)
            print("written anyway (--force): {}; the ONNX export failed: {}".format(args.output, failure),
                  file=out)
            return EXIT_FAILED
    if not verdict.failures:
        _ship(args, tmp, progress)
        print("verified: {} on network {!r} of {} ({}, {}): {}".format(
            row.converter, saved.network, args.input, row.device, data, _figures(row)), file=out)
        _describe_file(args.output, chain, saved, out)
        return EXIT_VERIFIED
    print(verdict.message(), file=out)
    if not args.force:
        kept = "; the existing {} is untouched".format(args.output) if os.path.exists(args.output) else ""
        print("not written: {} check(s) failed on {}{} (--force writes it anyway)".format(
            len(verdict.failures), data, kept), file=out)
        return EXIT_FAILED
    if os.path.getsize(tmp) == 0:  # the saved check did not run: the row failed before it
        try:
            write_nnp(tmp, chain.conversion, plan_layout(chain.conversion, saved.network, saved.executor,
                                                         saved.input_names, saved.output_names),
                      extra_names=chain.conversion.names)
        except UnsaveableGraph as e:
            print("not written, even with --force: {}".format(e), file=out)
            return EXIT_FAILED
    _ship(args, tmp, progress)
    print("written anyway (--force): {} holds a conversion that FAILED verification".format(args.output),
          file=out)
    _describe_file(args.output, chain, saved, out)
    return EXIT_FAILED


def _ship(args, tmp, progress):
    progress.start("writing {}".format(args.output))
    mode = _file_mode(args.output)
    os.chmod(tmp, mode)
    try:
        os.replace(tmp, args.output)
    except OSError as e:
        raise UsageError("-o {}: cannot write it ({})".format(args.output, e)) from None
    progress.done()


def _figures(row):
    parts = []
    if row.max_abs_error is not None:
        parts.append("max abs / rel error {:.3g} / {:.3g} within {}".format(
            row.max_abs_error, row.max_rel_error, row.tolerance_preset or row.tolerance))
    changes = ["-{} {}".format(v, k) for k, v in sorted((row.removed or {}).items())]
    changes += ["+{} {}".format(v, k) for k, v in sorted((row.added or {}).items())]
    parts.append("functions {} -> {}{}".format(row.functions_before, row.functions_after,
                                               " ({})".format(", ".join(changes)) if changes else ""))
    if row.speed_ratio is not None and row.speed_judged:
        parts.append("speed {:.2f}x".format(row.speed_ratio))
    parts.append("the written file reloads to identical outputs")
    return "; ".join(parts)


def _describe_file(output, chain, saved, out):
    conversion = chain.conversion
    layout = plan_layout(conversion, saved.network, saved.executor, saved.input_names, saved.output_names)
    print("wrote {} ({:.1f} MB): network {!r}, executor {!r}".format(
        output, os.path.getsize(output) / 2 ** 20, layout.network, layout.executor), file=out)
    for kind, names, variables, perms in (("feed", layout.input_names, conversion.inputs, conversion.input_perms),
                                          ("read", layout.output_names, conversion.outputs,
                                           conversion.output_perms)):
        for i, (name, v) in enumerate(zip(names, variables)):
            perm = (perms or [None] * len(names))[i]
            moved = " (layout {}: the original's axes transposed by {})".format(
                layout_tag(perm).upper(), tuple(perm)) if layout_tag(perm) else ""
            print("  {} {} {}{}".format(kind, name, tuple(v.shape), moved), file=out)
