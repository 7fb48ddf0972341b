"""The ``gcverify`` command (also ``python -m gcverify``):
``gcverify report A.json B.json [--baseline B] [--save-baseline B] [--html PAGE] [--json M]`` and
``gcverify convert IN.nnp -o OUT.nnp --with bn_fold,channel_last``.

``report`` merges the JSON reports of sharded runs (one per GPU runner or machine) into one
table, checks that the shards add up to their matrix (:func:`~gcverify.report.shards.check_shards`:
a missing shard, or a planned case without a row, is named), optionally compares the merged
rows with a baseline, saves them as a baseline, writes them as one JSON report and as the
HTML report. Its exit status is the CI gate: 1 on a failed or regressed row or an incomplete
set of shards, 2 on a file that cannot be read or written (named), 0 otherwise.
``convert`` (:mod:`gcverify.deploy.command`) converts a network of an ``.nnp`` file with
registered converters, verifies the result as the matrix does and writes it only when every
check passed (exit status 0 / 1 / 2: verified / failed / usage error).
"""
import argparse
import sys

from .report.baseline import Baseline, Thresholds
from .report.files import (HTML_MARKER, REPORT_FORMAT, ReportFileError, check_replaceable,
                           check_replaceable_text, merge_rows, read_report, report_document,
                           write_json_atomic)
from .report.shards import check_shards, in_matrix_order
from .report.table import counts, details, table

__all__ = ["main"]


def _parser():
    p = argparse.ArgumentParser(prog="gcverify", description=__doc__.split("\n\n")[1])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="merge JSON reports into one table; compare with a baseline")
    r.add_argument("reports", nargs="+", metavar="REPORT.json")
    r.add_argument("--baseline", help="compare the merged rows with this baseline")
    r.add_argument("--save-baseline", help="store the merged rows as a baseline here")
    r.add_argument("--error-factor", type=float, default=Thresholds.error_factor)
    r.add_argument("--multiple-factor", type=float, default=Thresholds.multiple_factor)
    r.add_argument("--speed-margin", type=float, default=Thresholds.speed_margin)
    r.add_argument("--format", default="simple", help="tabulate table format (simple, github, ...)")
    r.add_argument("--html", metavar="PAGE.html",
                   help="write the merged rows as one self-contained HTML report here")
    r.add_argument("--json", metavar="MERGED.json", help="write the merged rows as one JSON report here")
    c = sub.add_parser("convert", help="convert a network of an .nnp file, verify it, write it if verified")
    c.add_argument("input", metavar="IN.nnp")
    c.add_argument("-o", "--output", required=True, metavar="OUT.nnp",
                   help="written (atomically) only when every check passed")
    c.add_argument("--with", dest="with_", required=True, metavar="NAMES",
                   help="comma list of registered converters, applied in order (bn_fold,channel_last)")
    c.add_argument("--network", help="the network to convert (default: the one the file's first executor runs)")
    c.add_argument("--inputs", metavar="DATA.npz",
                   help="verify on these arrays (by input name, or arr_0, arr_1...) instead of seeded ones")
    c.add_argument("--converters-from", action="append", metavar="MODULE",
                   help="a module name or .py file (e.g. a conftest.py) whose @gcverify.converter "
                        "functions join the registered names; repeatable")
    c.add_argument("--force", action="store_true", help="write OUT even when a check failed (and say so)")
    c.add_argument("--device", default="cpu", help="cpu or cudnn")
    c.add_argument("--seed", type=int, default=0, help="seed of the generated inputs")
    c.add_argument("--speed-repeats", type=int, default=5, help="timed rounds of speed checks")
    c.add_argument("--no-speed", action="store_true",
                   help="skip the speed expectations (a busy machine times badly)")
    c.add_argument("--export", choices=["onnx"],
                   help="also write OUT.onnx with NNabla's converter and check it in onnxruntime "
                        "(skipped, with the reason, where either is missing)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    return p


def _compare(args, rows, out):
    """{row id: [regression, ...]} against ``args.baseline``, printed as it goes."""
    base = Baseline.load(args.baseline)
    thresholds = Thresholds(error_factor=args.error_factor, speed_margin=args.speed_margin,
                            multiple_factor=args.multiple_factor)
    compared, regressed = 0, {}
    for r in rows:
        c = base.compare(r, thresholds)
        compared += c.status == "compared"
        for problem in c.problems:
            regressed.setdefault(r.id, []).append(problem)
            print("REGRESSION {}: {}".format(r.id, problem), file=out)
    n = sum(len(p) for p in regressed.values())
    print("baseline {}: {} rows compared, {} regression(s)".format(args.baseline, compared, n), file=out)
    return regressed


def report(args, out):
    if args.html:  # before any work: never replace a file that is not an HTML report of ours
        check_replaceable_text(args.html, HTML_MARKER, "HTML report", "--html")
    if args.json:
        check_replaceable(args.json, REPORT_FORMAT, "report", "--json")
    reports = [(path,) + read_report(path) for path in args.reports]
    rows, warnings = merge_rows([(path, rows) for path, rows, _ in reports])
    rows = in_matrix_order(rows, reports)
    print(table(rows, args.format), file=out)
    for line in details(rows):
        print(line, file=out)
    print("{} rows from {} report(s): {}".format(len(rows), len(args.reports), counts(rows)), file=out)
    for w in warnings:
        print("warning: " + w, file=out)
    shard_problems = check_shards(reports)
    for problem in shard_problems:
        print("SHARDS: " + problem, file=out)
    status = 1 if any(r.failed for r in rows) or shard_problems else 0
    regressed = _compare(args, rows, out) if args.baseline else {}
    status = 1 if regressed else status
    if args.save_baseline:
        n = Baseline.save_rows(args.save_baseline, rows)
        print("baseline: {} rows saved to {}".format(n, args.save_baseline), file=out)
    if args.json:
        write_json_atomic(args.json, report_document(rows))
        print("report: {} rows written to {}".format(len(rows), args.json), file=out)
    if args.html:
        from .report.html import write_html  # jinja2 and matplotlib: only when asked for
        notes = ["shards: " + p for p in shard_problems] + ["warning: " + w for w in warnings]
        notes += ["{} regressed: {}".format(i, "; ".join(p)) for i, p in regressed.items()]
        write_html(args.html, rows, title="gcverify report ({} merged)".format(len(args.reports)),
                   notes=notes, row_problems=regressed, sources=list(args.reports))
        print("html: {} rows written to {}".format(len(rows), args.html), file=out)
    return status


def main(argv=None, out=None):
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if args.command == "convert":
        from .deploy.command import run  # imports nnabla: only for this command
        return run(args, out)
    try:
        return report(args, out)
    except ReportFileError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
