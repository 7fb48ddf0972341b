"""What every benchmark family shares: paired timing through gcverify's one timing helper,
and lines that show a ratio with its interval against a target.

Every timed comparison is ``gcverify.verify.timing.measure_speed(slow, fast)``: paired
rounds in alternating order, CPU time, the Hodges-Lehmann ratio time(slow) / time(fast) and
its 95 % signed-rank interval (the method is in that module's docstring). A target is a
benchmark figure, not a test: it is "met" when the estimate meets it, and the line says
when the interval still straddles it (a noisy machine: run again before concluding).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from converters.graph_view import all_parameters  # noqa: E402
from gcverify.verify.timing import measure_speed  # noqa: E402

__all__ = ["timed", "show_ratio", "show_value", "summary", "family_main", "ROUNDS"]

ROUNDS = 15  # paired rounds per comparison unless a section says otherwise


def timed(run_a, run_b, rounds=ROUNDS, min_sample=0.02, max_seconds=600.0):
    """SpeedResult of the pair; ``ratio`` = time(run_a) / time(run_b). The rounds, not the
    time budget, end a benchmark's comparison (600 s is a safety net)."""
    return measure_speed(run_a, run_b, rounds=rounds, min_sample=min_sample,
                         max_seconds=max_seconds)


def _verdict(value, low, high, target, at_most):
    if target is None:
        return ""
    ok = value <= target if at_most else value >= target
    straddles = low is not None and low <= target <= high
    return "  target {} {:g}: {}{}".format("<=" if at_most else ">=", target,
                                         "met" if ok else "MISSED",
                                         " (interval straddles it)" if straddles else "")


def show_ratio(results, label, r, target=None, at_most=False, invert=False, names=("a", "b")):
    """Print one comparison; ``invert`` shows time(b) / time(a) (e.g. ours / NNabla's when
    ``a`` is NNabla's). Records ``(value, ok)`` under ``label`` when there is a target."""
    value, low, high = r.ratio, r.low, r.high
    if invert:
        value, low, high = 1 / value, high and 1 / high, low and 1 / low
    interval = "[{:.3f}, {:.3f}]".format(low, high) if low is not None else "[too few rounds]"
    t = (r.time_original, r.time_converted)
    print("  {:<40} {} {:8.2f} ms  {} {:8.2f} ms  ratio {:.3f} {} ({} rounds){}"
          .format(label, names[0], t[0] * 1e3, names[1], t[1] * 1e3, value, interval,
                  r.rounds, _verdict(value, low, high, target, at_most)), flush=True)
    if target is not None:
        results[label] = (value, value <= target if at_most else value >= target)
    return value


def show_value(results, label, value, target, at_most=True, detail=""):
    """Print and record a figure that is not a timed ratio (e.g. memory)."""
    print("  {:<40} {:.3f}{}{}".format(label, value, detail,
                                      _verdict(value, None, None, target, at_most)), flush=True)
    results[label] = (value, value <= target if at_most else value >= target)


def summary(results):
    print("\n## summary")
    for k, (value, ok) in results.items():
        print("  {:<44} {:8.3f}  {}".format(k, value, "met" if ok else "MISSED"))
    return all(ok for _, ok in results.values())


def family_main(argv, doc, run, sections=(), rounds=ROUNDS):
    """A family's command line: ``--rounds``, ``--section`` (when it has sections) and
    ``--strict``; calls ``run(sections, rounds, results)``, prints the summary and returns
    the exit status: 1 when the global parameter scope changed or (``--strict``) a target
    was missed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds, help="paired rounds per comparison")
    if sections:
        parser.add_argument("--section", choices=sections, action="append",
                            help="run only this section (repeatable)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args, _ = parser.parse_known_args(argv)
    before = {k: id(v) for k, v in all_parameters().items()}
    results = {}
    run(getattr(args, "section", None) or sections, args.rounds, results)
    clean = {k: id(v) for k, v in all_parameters().items()} == before
    met = summary(results)
    print("  global parameter scope unchanged: {}".format(clean))
    return 1 if not clean or (args.strict and not met) else 0
