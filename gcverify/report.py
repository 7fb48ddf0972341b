"""Rows of the verification matrix, their table, and JSON report files.

A row is a plain JSON dict, one per (converter, model, device) case, built on the worker that
ran the case and carried to the controller on the test report. Files are written atomically
(temporary file in the same directory, then ``os.replace``), so an existing report is never
destroyed by a failed write, and read back with errors that name the file.
"""
import datetime
import json
import os
import platform
import tempfile

from tabulate import tabulate

__all__ = ["REPORT_FORMAT", "ReportFileError", "environment", "machine_id", "table",
           "write_json_atomic", "read_json", "report_document", "load_report", "merge_rows",
           "check_writable", "check_replaceable", "short"]

REPORT_FORMAT = "gcverify-report"
VERSION = 1


class ReportFileError(ValueError):
    """A report or baseline file that cannot be read or written; the message names it."""


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def environment():
    """Where rows were measured: the machine (hardware, not host name), nnabla, python."""
    try:
        import nnabla
        version = nnabla.__version__
    except Exception:  # pragma: no cover - nnabla is a dependency
        version = "?"
    return dict(machine=machine_id(), host=platform.node(), nnabla=version,
                python=platform.python_version())


def machine_id():
    # Hardware identity, so CI runners of one kind compare with each other across hosts.
    return "{} {} x{}".format(platform.machine(), _cpu_model(), os.cpu_count())


def short(text, width=60):
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _num(x, fmt="{:.2g}"):
    return "-" if x is None else fmt.format(x)


def _speed(row):
    text = _num(row.get("speed_ratio"), "{:.2f}x")
    # a ratio of a graph too fast to judge is shown in parentheses
    return "({})".format(text) if row.get("speed_judged") is False else text


def _changes(row):
    parts = ["-{} {}".format(v, k) for k, v in sorted((row.get("removed") or {}).items())]
    parts += ["+{} {}".format(v, k) for k, v in sorted((row.get("added") or {}).items())]
    if len(parts) > 2:
        parts = parts[:2] + ["({} more)".format(len(parts) - 2)]
    return ", ".join(parts) or "-"


def table(rows, tablefmt="simple"):
    """The matrix as text: one line per row, the diagnosis cut to fit."""
    body = []
    for r in rows:
        fb, fa = r.get("functions_before"), r.get("functions_after")
        body.append((
            r.get("converter"), r.get("model"), r.get("device"), r.get("outcome", "?"),
            "-" if fb is None else "{} -> {}".format(fb, "?" if fa is None else fa),
            short(_changes(r), 34),
            "-" if r.get("max_abs_error") is None else "{} / {}".format(
                _num(r.get("max_abs_error")), _num(r.get("max_rel_error"))),
            r.get("tolerance_preset") or r.get("tolerance") or "-",
            _num(r.get("conversion_time"), "{:.3f}"),
            _speed(r),
            short(r.get("message"), 56) or "-",
        ))
    return tabulate(body, ["converter", "model", "device", "outcome", "functions", "changed",
                           "max abs / rel err", "tolerance", "convert s", "speed", "note"],
                    tablefmt=tablefmt)


def counts(rows):
    c = {}
    for r in rows:
        c[r.get("outcome", "?")] = c.get(r.get("outcome", "?"), 0) + 1
    return ", ".join("{} {}".format(v, k) for k, v in sorted(c.items()))


# --- files ------------------------------------------------------------------------------
def check_writable(path, what):
    """Raise ReportFileError unless ``path`` can be created or replaced."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise ReportFileError("{} {} is a directory, not a file".format(what, path))
    if os.path.exists(path) and not os.path.isfile(path):  # a device, a socket...
        raise ReportFileError("{} {} exists and is not a regular file".format(what, path))
    if not os.path.isdir(directory):
        raise ReportFileError("{} {}: directory {} does not exist".format(what, path, directory))
    if not os.access(directory, os.W_OK):
        raise ReportFileError("{} {}: directory {} is not writable".format(what, path, directory))


def check_replaceable(path, fmt, what, option):
    """Raise ReportFileError unless ``path`` can be written and holds nothing but a readable
    gcverify document of format ``fmt`` (or is absent or empty): a report must never replace a
    baseline or a user's file, nor a baseline anything else."""
    check_writable(path, option)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    try:
        read_json(path, fmt, what)
    except ReportFileError as e:
        raise ReportFileError("{} {}: refusing to replace it ({}); move it away or choose another "
                              "path".format(option, path, e)) from None


def write_json_atomic(path, document, what="report"):
    """Write ``document`` to ``path`` atomically; the old file survives any failure."""
    check_writable(path, what)
    directory = os.path.dirname(os.path.abspath(path))
    try:  # the check above cannot see everything (root on a read-only mount, a race)
        fd, tmp = tempfile.mkstemp(prefix=".gcverify-", suffix=".tmp", dir=directory)
    except OSError as e:
        raise ReportFileError("cannot write {} {}: {}".format(what, path, e)) from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, indent=1, sort_keys=True, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ReportFileError("cannot write {} {}: {}".format(what, path, e)) from None
        raise


def read_json(path, fmt, what, hint=""):
    """Read a gcverify JSON document of format ``fmt``; clear errors naming ``path``."""
    if not os.path.exists(path):
        raise ReportFileError("no {} file at {}{}".format(what, path, hint))
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ReportFileError("cannot read {} {}: {}".format(what, path, e)) from None
    if not text.strip():
        raise ReportFileError("{} {} is empty".format(what, path))
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ReportFileError("{} {} is corrupt or truncated (not valid JSON: {})".format(
            what, path, e)) from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ReportFileError("{} is not a gcverify {} (format {!r}, expected {!r})".format(
            path, what, found, fmt))
    if doc.get("version") != VERSION:
        raise ReportFileError("{} {} has version {!r}; this gcverify reads version {}".format(
            what, path, doc.get("version"), VERSION))
    return doc


def report_document(rows):
    return dict(format=REPORT_FORMAT, version=VERSION, environment=environment(),
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                rows=list(rows))


def load_report(path):
    doc = read_json(path, REPORT_FORMAT, "report")
    rows = doc.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "id" in r for r in rows):
        raise ReportFileError("report {} has no valid 'rows' list".format(path))
    return rows


def merge_rows(groups):
    """Rows of several reports (shards) as one list; a case measured twice on the same
    machine keeps the later one and is listed in the returned warnings."""
    merged, warnings = {}, []
    for source, rows in groups:
        for r in rows:
            key = (r["id"], r.get("machine"), r.get("device_label"))
            if key in merged:
                warnings.append("{} appears again in {}; keeping that one".format(r["id"], source))
            merged[key] = r
    return list(merged.values()), warnings
