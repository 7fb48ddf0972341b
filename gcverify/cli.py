"""The ``gcverify`` command (also ``python -m gcverify``):
``gcverify report A.json B.json [--baseline B] [--save-baseline B]``.

Merges the JSON reports of sharded runs (one per GPU runner or machine) into one table,
optionally compares the merged rows with a baseline (exit status 1 on any regression) and
saves them as a baseline. Unreadable files exit with status 2 and a message naming them.
"""
import argparse
import sys

from .report.baseline import Baseline, Thresholds
from .report.files import ReportFileError, load_report, merge_rows
from .report.table import counts, table

__all__ = ["main"]


def _parser():
    p = argparse.ArgumentParser(prog="gcverify", description=__doc__.split("\n\n")[1])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="merge JSON reports into one table; compare with a baseline")
    r.add_argument("reports", nargs="+", metavar="REPORT.json")
    r.add_argument("--baseline", help="compare the merged rows with this baseline")
    r.add_argument("--save-baseline", help="store the merged rows as a baseline here")
    r.add_argument("--error-factor", type=float, default=Thresholds.error_factor)
    r.add_argument("--speed-margin", type=float, default=Thresholds.speed_margin)
    r.add_argument("--format", default="simple", help="tabulate table format (simple, github, ...)")
    return p


def report(args, out):
    rows, warnings = merge_rows([(path, load_report(path)) for path in args.reports])
    print(table(rows, args.format), file=out)
    print("{} rows from {} report(s): {}".format(len(rows), len(args.reports), counts(rows)), file=out)
    for w in warnings:
        print("warning: " + w, file=out)
    status = 1 if any(r.failed for r in rows) else 0
    if args.baseline:
        base = Baseline.load(args.baseline)
        thresholds = Thresholds(error_factor=args.error_factor, speed_margin=args.speed_margin)
        compared = regressions = 0
        for r in rows:
            c = base.compare(r, thresholds)
            compared += c.status == "compared"
            for problem in c.problems:
                regressions += 1
                print("REGRESSION {}: {}".format(r.id, problem), file=out)
        print("baseline {}: {} rows compared, {} regression(s)".format(
            args.baseline, compared, regressions), file=out)
        status = 1 if regressions else status
    if args.save_baseline:
        n = Baseline.save_rows(args.save_baseline, rows)
        print("baseline: {} rows saved to {}".format(n, args.save_baseline), file=out)
    return status


def main(argv=None, out=None):
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        return report(args, out)
    except ReportFileError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
