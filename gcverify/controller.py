"""Controller side: gather the rows that arrive on test reports, print the table once, write
the JSON report and the baseline.

Rows travel as plain JSON in each report's user properties, so this works the same with or
without pytest-xdist: without it the controller is the only process; with it, workers send
their reports here. A worker that crashes loses only the rows of its own tests, which show
up as ``crashed``.
"""
import json
import re

from .baseline import Baseline
from .report import ReportFileError, counts, report_document, table, write_json_atomic
from .runner import ROW_PROPERTY

__all__ = ["Collector"]


class Collector:
    def __init__(self, session):
        self.session = session
        self.rows = {}
        self.notes = []
        self.failed_writes = False

    def add_report(self, report):
        for name, value in report.user_properties:
            if name == ROW_PROPERTY:
                row = json.loads(value)
                self.rows[row["id"]] = row
                return
        if report.when == "???" and report.failed:  # xdist: the worker running it crashed
            match = re.search(r"\[(.+)\]$", report.nodeid)
            case = self._cases().get(match.group(1)) if match else None
            if case is not None and case.id not in self.rows:
                self.rows[case.id] = dict(id=case.id, converter=case.converter, model=case.model_label,
                                          device=case.device, outcome="crashed",
                                          message="worker crashed while running it")

    def _cases(self):
        return {c.id: c for c in self.session.cases()} if self.session.settings else {}

    def ordered(self):
        """Rows in matrix order (converter, model, device), whatever order they arrived in."""
        position = {case_id: i for i, case_id in enumerate(self._cases())}
        return sorted(self.rows.values(), key=lambda r: (position.get(r["id"], len(position)), r["id"]))

    def finish(self):
        """Write the report and the baseline; returns True when everything was written."""
        settings = self.session.settings
        rows = self.ordered()
        if settings.report:
            self._write(lambda: write_json_atomic(settings.report, report_document(rows)),
                        "report: {} rows written to {}".format(len(rows), settings.report))
        if settings.save_baseline:
            def save():
                n = Baseline.save_rows(settings.save_baseline, rows)
                self.notes.append("baseline: {} rows saved to {}".format(n, settings.save_baseline))
            self._write(save, None)
        return not self.failed_writes

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
        expected = len(self.session.cases())
        lines = table(rows).splitlines()
        missing = expected - len(rows)
        tail = "{} rows: {}".format(len(rows), counts(rows))
        if missing > 0:
            tail += "; {} of {} cases have no row (not run or deselected)".format(missing, expected)
        if self.session.baseline is not None:
            tail += "; compared with baseline {}".format(self.session.baseline.path)
        return lines + [tail] + self.notes
