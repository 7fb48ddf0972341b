"""Side-by-side benchmarks of our converters against NNabla's built-ins, in one run.

Each family keeps its own script (bench_bn.py, bench_layout.py, bench_rebuild.py,
bench_low_rank.py); this runs them all and prints their tables one after another. Ratios,
not absolute times, are the result: both sides of each comparison are timed in paired,
alternating rounds by gcverify's one timing helper (bench_common.timed), which gives each
ratio with its 95 % interval, so machine load that hits both sides alike cancels out.

The verifier's own cost runs only when named, since it takes minutes (docs/benchmarks.md):
``--only bench_matrix`` (CPU per row phase of the verification matrix and of collection;
``--against REF`` adds the paired comparison with an older checkout) and ``--only
speed_under_load`` (the CPU speed verdicts beside a CPU hog, honest and with a planted
slowdown).
"""
import argparse
import importlib
import os
import sys

FAMILIES = ("bench_bn", "bench_layout", "bench_rebuild", "bench_low_rank")
ON_REQUEST = ("bench_matrix", "speed_under_load")  # minutes each: run when named


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=FAMILIES + ON_REQUEST, action="append",
                        help="run only this family (repeatable)")
    args, rest = parser.parse_known_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    status = 0
    for name in args.only or FAMILIES:
        print("=" * 20, name, "=" * 20, flush=True)
        status |= int(importlib.import_module(name).main(rest) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
