"""JSON report files: written atomically, read back with errors that name the file.

Files are written through a temporary file in the same directory and ``os.replace``, so an
existing report or baseline is never destroyed by a failed write; an output path is checked
before any test runs (it can be written, and holds nothing but a file of its own kind). A
report document holds :class:`~gcverify.report.row.Row` objects as JSON, and a sharded run's
report also its ``shard`` (see :mod:`.shards`). Text files (the HTML report) go through the
same atomic write.
"""
import datetime
import importlib.metadata
import json
import os
import platform
import tempfile

from .row import Row

__all__ = ["REPORT_FORMAT", "HTML_MARKER", "ReportFileError", "environment", "machine_id",
           "write_json_atomic", "write_text_atomic", "read_json", "report_document", "load_report",
           "read_report", "merge_rows", "check_writable", "check_replaceable",
           "check_replaceable_text", "VERSION", "READABLE_VERSIONS"]

REPORT_FORMAT = "gcverify-report"
# In the head of every HTML report: what lets an output path replace only a report of ours.
HTML_MARKER = '<meta name="generator" content="gcverify html report">'
VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: rows without row_version, same keys


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
    try:  # the installed distribution's version: no need to import nnabla for it
        version = importlib.metadata.version("nnabla")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - nnabla is a dependency
        version = "?"
    return dict(machine=machine_id(), host=platform.node(), nnabla=version,
                python=platform.python_version())


def machine_id():
    # Hardware identity, so CI runners of one kind compare with each other across hosts.
    return "{} {} x{}".format(platform.machine(), _cpu_model(), os.cpu_count())


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


def check_replaceable(path, fmt, what, option, versions=READABLE_VERSIONS):
    """Raise ReportFileError unless ``path`` can be written and holds nothing but a readable
    gcverify document of format ``fmt`` (or is absent or empty): a report must never replace a
    baseline or a user's file, nor a baseline anything else. ``versions``: those of ``fmt``
    this gcverify reads."""
    check_writable(path, option)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    try:
        read_json(path, fmt, what, versions=versions)
    except ReportFileError as e:
        raise ReportFileError("{} {}: refusing to replace it ({}); move it away or choose another "
                              "path".format(option, path, e)) from None


def check_replaceable_text(path, marker, what, option):
    """Raise ReportFileError unless ``path`` can be written and is absent, empty, or a file
    of ours: one whose first 4 kB hold ``marker`` (e.g. the HTML report's generator tag)."""
    check_writable(path, option)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    try:
        with open(path, errors="replace") as f:
            head = f.read(4096)
    except OSError as e:
        raise ReportFileError("{} {}: cannot read it ({})".format(option, path, e)) from None
    if marker not in head:
        raise ReportFileError("{} {}: refusing to replace it (not a gcverify {}); move it away or "
                              "choose another path".format(option, path, what))


def write_text_atomic(path, text, what="report"):
    """Write ``text`` to ``path`` atomically; the old file survives any failure."""
    check_writable(path, what)
    directory = os.path.dirname(os.path.abspath(path))
    try:  # the check above cannot see everything (root on a read-only mount, a race)
        fd, tmp = tempfile.mkstemp(prefix=".gcverify-", suffix=".tmp", dir=directory)
    except OSError as e:
        raise ReportFileError("cannot write {} {}: {}".format(what, path, e)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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


def write_json_atomic(path, document, what="report"):
    """Write ``document`` to ``path`` as JSON, atomically; the old file survives any failure."""
    write_text_atomic(path, json.dumps(document, indent=1, sort_keys=True, allow_nan=True) + "\n",
                      what)


def read_json(path, fmt, what, hint="", versions=READABLE_VERSIONS):
    """Read a gcverify JSON document of format ``fmt`` in one of ``versions`` (a format may
    be versioned on its own: baselines are); clear errors naming ``path``."""
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
    if doc.get("version") not in versions:
        raise ReportFileError("{} {} has version {!r}; this gcverify reads versions {}".format(
            what, path, doc.get("version"), ", ".join(map(str, versions))))
    return doc


def report_document(rows, shard=None):
    """The JSON document of a report holding ``rows`` (Row objects); ``shard``: the shard's
    part of the plan (:meth:`.shards.ShardPlan.document`) when the run was one shard."""
    doc = dict(format=REPORT_FORMAT, version=VERSION, environment=environment(),
               created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               rows=[r.to_json() for r in rows])
    if shard is not None:
        doc["shard"] = shard
    return doc


def read_report(path):
    """The report at ``path``: ``(rows as Row objects, the whole document)``."""
    doc = read_json(path, REPORT_FORMAT, "report")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise ReportFileError("report {} has no valid 'rows' list".format(path))
    try:
        return [Row.from_json(r) for r in rows], doc
    except (TypeError, ValueError) as e:
        raise ReportFileError("report {} has an invalid row: {}".format(path, e)) from None


def load_report(path):
    """The rows of the report at ``path``, as Row objects."""
    return read_report(path)[0]


def merge_rows(groups):
    """Rows of several reports (shards) as one list; a case measured twice on the same
    machine keeps the later one and is listed in the returned warnings."""
    merged, warnings = {}, []
    for source, rows in groups:
        for r in rows:
            key = (r.id, r.machine, r.device_label)
            if key in merged:
                warnings.append("{} appears again in {}; keeping that one".format(r.id, source))
            merged[key] = r
    return list(merged.values()), warnings
