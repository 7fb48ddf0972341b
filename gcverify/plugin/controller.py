"""Controller side: gather the rows that arrive on test reports, print the table once, write
the JSON report, the HTML page and the baseline.

Rows travel as plain JSON in each report's user properties, so this works the same with or
without pytest-xdist: without it the controller is the only process; with it, workers send
their reports here. A worker that crashes loses only the rows of its own tests, which show
up as ``crashed``.
"""
import json
import re

from ..report.baseline import Baseline
from ..report.files import ReportFileError, report_document, write_json_atomic
from ..report.row import Row
from ..core.expectations import Unchanged
from ..report.table import counts, details, table, vacuous
from .worker import ROW_PROPERTY

__all__ = ["Collector"]


class Collector:
    """Gathers the rows of one session. ``holder`` gives the process's Session (``get()``,
    made when first needed, and ``created``): a controller that received no row and was
    asked for no file never builds one, so projects that merely have gcverify installed
    never import nnabla through it."""

    def __init__(self, holder):
        self.holder = holder
        self.rows = {}
        self.notes = []
        self.failed_writes = False

    @property
    def session(self):
        return self.holder.get()

    def add_report(self, report):
        for name, value in report.user_properties:
            if name == ROW_PROPERTY:
                row = Row.from_json(json.loads(value))
                self.rows[row.id] = row
                return
        # xdist: the worker running it crashed (only looked at once gcverify is in use here)
        if report.when == "???" and report.failed and (self.rows or self.holder.created):
            match = re.search(r"\[(.+)\]$", report.nodeid)
            case = self._cases().get(match.group(1)) if match else None
            if case is not None and case.id not in self.rows:
                self.rows[case.id] = Row(case.id, converter=case.converter, model=case.model_label,
                                         device=case.device, outcome="crashed",
                                         message="worker crashed while running it")

    def _cases(self):
        return {c.id: c for c in self.session.cases()} if self.session.settings else {}

    def ordered(self):
        """Rows in matrix order (converter, model, device), whatever order they arrived in."""
        if not self.rows:
            return []
        position = {case_id: i for i, case_id in enumerate(self._cases())}
        return sorted(self.rows.values(), key=lambda r: (position.get(r.id, len(position)), r.id))

    def finish(self):
        """Write the report and the baseline; returns True when everything was written."""
        if not self.rows and not self._asked_for_files():
            return True
        settings = self.session.settings
        rows = self.ordered()
        plan = self.session.shard_plan
        shard = plan.document(settings.shard[0]) if plan is not None else None
        if settings.report:
            self._write(lambda: write_json_atomic(settings.report, report_document(rows, shard)),
                        "report: {} rows written to {}".format(len(rows), settings.report))
        if settings.html:
            self._write(lambda: self._write_html(settings.html, rows),
                        "html: {} rows written to {}".format(len(rows), settings.html))
        if settings.save_baseline:
            def save():
                n = Baseline.save_rows(settings.save_baseline, rows)
                self.notes.append("baseline: {} rows saved to {}".format(n, settings.save_baseline))
            self._write(save, None)
        return not self.failed_writes

    def _asked_for_files(self):
        settings = self.session.settings if self.holder.created else None
        return bool(settings and (settings.report or settings.save_baseline or settings.html))

    def _write_html(self, path, rows):
        from ..report.html import write_html  # jinja2 and matplotlib: only when asked for
        shard = self.session.settings.shard
        title = "gcverify report" + (" (shard {}/{})".format(*shard) if shard else "")
        write_html(path, rows, title=title, notes=self._missing_note())

    def _missing_note(self):
        missing = len(self.session.planned_cases()) - len(self.rows)
        return ["{} planned case(s) have no row (not run, deselected or interrupted)".format(
            missing)] if missing > 0 else []

    def _write(self, action, note):
        try:
            action()
            if note:
                self.notes.append(note)
        except ReportFileError as e:
            self.failed_writes = True
            self.notes.append("ERROR " + str(e))

    def summary_lines(self):
        rows = self.ordered()
        if not rows:
            return []
        expected = len(self.session.planned_cases())
        lines = table(rows).splitlines()
        missing = expected - len(rows)
        tail = "{} rows: {}".format(len(rows), counts(rows))
        if missing > 0:
            tail += "; {} of {} cases have no row (not run or deselected)".format(missing, expected)
        plan = self.session.shard_plan
        if plan is not None:
            tail += "; shard {}/{} of {} cases (balanced by {})".format(
                self.session.settings.shard[0], plan.count, len(plan.assignment), plan.costs)
        if self.session.baseline is not None:
            tail += "; compared with baseline {}".format(self.session.baseline.path)
        return lines + details(rows) + [tail] + vacuous(rows, self._idle_by_design(rows)) + self.notes

    def _idle_by_design(self, rows):
        """Converters of these rows whose layer rules promise the graph unchanged (identity)."""
        idle = set()
        for name in {r.converter for r in rows}:
            registry = self.session.converters
            spec = registry.get(name) if name in registry else None
            if spec is not None and any(isinstance(x, Unchanged) and not x.except_types for x in spec.layers):
                idle.add(name)
        return idle
