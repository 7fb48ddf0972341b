"""The CPU speed verdicts under load: honest conversions are never "missed", a planted
1.5x slowdown always is.

The matrix's speed-checked CPU rows (``bn_fold`` and ``bn_linear`` on ResNet-50: the
converted graph must be at least 0.9x as fast as the original, gcverify/builtin/ours.py)
run exactly as a matrix row runs them (``gcverify.plugin.worker.verify_case``, default
settings: up to 80 paired rounds, 20 s of CPU), several times each:

- ``idle``: nothing else of ours running (colleagues' load may be there);
- ``loaded``: beside a CPU hog, one spinning process per core, started before and stopped
  after the row;
- ``planted``: beside the hog, with the converted graph made 1.5x as slow: the benchmark
  wraps the ``speed_check`` that ``gcverify.verify.case`` calls, and the converted side's
  callable, after each forward, spins for half of that forward's own CPU time. The graph's
  ratio to the original drops to 1/1.5 of its honest value (about 0.7x, below the 0.9x
  required), so the verdict must be a confident "missed".

Why the verdicts hold under load: samples are process CPU time (NNabla's CPU backend runs
one thread), so time spent waiting for a core is not counted, and what load still does to
a sample (caches, frequency) hits both sides of an alternating pair alike
(gcverify/verify/timing.py). Each run prints its verdict, ratio and interval, rounds, and
the row's CPU and wall seconds (wall / CPU shows how loaded the machine was). Exit status
with ``--strict``: 1 when an honest run was missed or a planted one was not.
"""
import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gcverify.plugin.options import OPTIONS  # noqa: E402
from gcverify.plugin.session import Case, Session  # noqa: E402
from gcverify.plugin.worker import verify_case  # noqa: E402
from gcverify.verify import case as case_module  # noqa: E402

__all__ = ["main", "slowed", "Hog"]

CONVERTERS = ("bn_fold", "bn_linear")
MODEL = "resnet50"
SLOWDOWN = 1.5


def _spin(stop_at):
    while time.time() < stop_at:
        pass


class Hog:
    """``n`` processes spinning on the cores (at most ``seconds``, a safety net); stopped by
    handle on exit."""

    def __init__(self, n=None, seconds=600.0):
        self.n, self.seconds, self.procs = n or os.cpu_count() or 2, seconds, []

    def __enter__(self):
        ctx = multiprocessing.get_context("fork")  # no re-import: spinning at once
        stop_at = time.time() + self.seconds
        self.procs = [ctx.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(self.n)]
        for p in self.procs:
            p.start()
        time.sleep(0.5)  # let them reach the cores before the row starts
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.join()


def slowed(run, factor=SLOWDOWN, clock=time.process_time):
    """``run`` made ``factor`` times as expensive in CPU: after each call, spin for
    ``factor - 1`` times the CPU that call took."""
    def run_slowly():
        t0 = clock()
        out = run()
        extra = (clock() - t0) * (factor - 1.0)
        t1 = clock()
        while clock() - t1 < extra:
            pass
        return out
    return run_slowly


def _planted_speed_check(real):
    def speed_check(run_original, run_converted, *args, **kwargs):
        return real(run_original, slowed(run_converted), *args, **kwargs)
    return speed_check


def _session(converter):
    session = Session()
    defaults = {key: default for _, key, _, default in OPTIONS}
    settings = {"gc_models": MODEL, "gc_converters": converter, "gc_device": "cpu"}
    session.configure(lambda key: settings.get(key) or defaults[key])
    return session


def run_row(session, converter, mode):
    """One row in ``mode`` (idle, loaded, planted): (verdict, row, CPU s, wall s)."""
    real = case_module.speed_check
    if mode == "planted":
        case_module.speed_check = _planted_speed_check(real)
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        if mode == "idle":
            verdict = verify_case(session, Case(converter, MODEL, MODEL, "cpu"))
        else:
            with Hog():
                verdict = verify_case(session, Case(converter, MODEL, MODEL, "cpu"))
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        case_module.speed_check = real
    return verdict, verdict.row, cpu, wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per converter and mode")
    parser.add_argument("--modes", default="idle,loaded,planted")
    parser.add_argument("--strict", action="store_true")
    args, _ = parser.parse_known_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    print("## speed verdicts of {} on {} (cpu), {} run(s) per mode; hog: {} spinning processes"
          .format(", ".join(CONVERTERS), MODEL, args.runs, os.cpu_count()), flush=True)
    tally = {m: Counter() for m in modes}
    sessions = {c: _session(c) for c in CONVERTERS}
    for run in range(args.runs):
        for mode in modes:
            for conv in CONVERTERS:
                verdict, row, cpu, wall = run_row(sessions[conv], conv, mode)
                v = row.speed_verdict or "no verdict ({})".format(row.speed_note or verdict.summary())
                tally[mode][v] += 1
                interval = "[{:.3f}, {:.3f}]".format(row.speed_low, row.speed_high) \
                    if row.speed_low is not None else "[none]"
                print("  run {} {:<8} {:<10} {:<13} ratio {:.3f} {} {:>2} rounds  row {:5.1f} s CPU "
                      "{:5.1f} s wall (x{:.2f})".format(
                          run + 1, mode, conv, v, row.speed_ratio or float("nan"), interval,
                          row.speed_rounds or 0, cpu, wall, wall / cpu if cpu else float("nan")),
                      flush=True)
    print("\n## verdicts")
    ok = True
    for mode in modes:
        print("  {:<8} {}".format(mode, ", ".join("{} {}".format(k, n) for k, n in sorted(tally[mode].items()))))
        total = sum(tally[mode].values())
        if mode == "planted":
            ok &= tally[mode]["missed"] == total
        else:
            ok &= tally[mode]["missed"] == 0
    print("  honest runs never missed, planted 1.5x slowdowns always missed: {}".format(ok))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
