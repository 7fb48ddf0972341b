"""Command line: soak converters or show a seed's graph.

    python -m gcverify.fuzz --graphs 50000 --seed 1000 [--target bn_fold ...] [--save DIR]
    python -m gcverify.fuzz --show 1234          # the graph generate(1234) builds
"""
import argparse
import sys

from .generator import generate
from .campaign import run_fuzz
from .targets import fuzz_target, target_names


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gcverify.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=2000, help="graphs per target")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--target", action="append", help="a target name or module:attribute "
                        "(repeatable; default: {})".format(", ".join(target_names())))
    parser.add_argument("--save", default=None, help="directory for shrunk reproducers")
    parser.add_argument("--max-failures", type=int, default=3, help="per target")
    parser.add_argument("--show", type=int, metavar="SEED", help="print the graph of one seed and exit")
    args = parser.parse_args(argv)
    if args.show is not None:
        print(generate(args.show).describe())
        return 0
    failed = False
    for name in args.target or target_names():
        report = run_fuzz(fuzz_target(name), range(args.seed, args.seed + args.graphs),
                          save_dir=args.save, target_ref=name, max_failures=args.max_failures)
        print(report.details() if report.failures else report.summary(), flush=True)
        failed = failed or bool(report.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
