"""Fixtures of the planted-bug suite: the default matrix's rows run in-process, one session
per process, so that every built model and its measured facts (reference outputs, noise
floors) are reused by every mutation that process hunts.

A row *catches* a bug only with a verdict: a failed check of the converted graph (numbers,
layers, wiring, original untouched, quantization grid, saved file). A conversion that raises,
a graph that cannot run, a vacuous model or an exception escaping the verifier are listed,
but catch nothing: a verifier that crashes on a bug has not judged it. Each case is the
matrix row exactly as ``verify_case`` runs it, but without its speed expectation: a speed
check proves nothing about a wrong graph (and timings on 2 shared cores are noise), while its
sampling was a third of the suite's CPU time.
"""
import os
import pathlib
import re
import sys
from dataclasses import dataclass, field, replace
from typing import List

import pytest

from gcverify.plugin.options import OPTIONS
from gcverify.plugin.session import Session
from gcverify.verify.case import run_case

ROOT = pathlib.Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # the catalogue is imported as suites.planted_bugs
    sys.path.insert(0, str(ROOT))

VERDICT_CHECKS = ("numeric", "layers", "inputs", "untouched", "random", "quantization", "saved")
_VERDICT = re.compile(r"^\[({})\] ".format("|".join(VERDICT_CHECKS)))
SETTINGS = {"gc_speed_repeats": "1"}  # the default matrix otherwise: default models, cpu (no speed: see run)
EXPENSIVE = ("resnet50",)  # run last: a cheap model catches most bugs first
PROPERTY = "gcverify.mutation"  # the user property a hunt's figures travel in (xdist too)


def first_line(text, width=90):
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[:width - 3] + "..."


@dataclass
class RowRun:
    """One case: its id, its verdict lines (failed checks) and whatever else went wrong."""

    id: str
    verdicts: List[str] = field(default_factory=list)
    other: List[str] = field(default_factory=list)

    @property
    def failed(self):
        return bool(self.verdicts or self.other)


@dataclass
class Hunt:
    """A mutation against its rows: ``killed`` when a row failed a check."""

    name: str
    runs: List[RowRun] = field(default_factory=list)

    @property
    def killing(self):
        return [r for r in self.runs if r.verdicts]

    @property
    def killed(self):
        return bool(self.killing)

    def figures(self):
        """What the score table shows: rows run, rows failing a check, the first of them and
        its first failure; rows that failed without a verdict (raised, crashed) apart."""
        killing = self.killing
        silent = [r for r in self.runs if r.other and not r.verdicts]
        return dict(name=self.name, outcome="killed" if killing else "survived",
                    rows_run=len(self.runs), rows_failed=len(killing), not_verdicts=len(silent),
                    first_row=killing[0].id if killing else "-",
                    first_line=first_line(killing[0].verdicts[0]) if killing else "",
                    other=first_line("{}: {}".format(silent[0].id, silent[0].other[0]), 90) if silent else "")

    def describe(self):
        lines = ["{}: {} row(s) run, none failed a check".format(self.name, len(self.runs))]
        lines += ["  {}: {}".format(r.id, first_line(r.other[0])) for r in self.runs if r.other][:6]
        return "\n".join(lines)


class Matrix:
    """The default matrix of this process (cpu), run row by row."""

    def __init__(self):
        defaults = {key: default for _, key, _, default in OPTIONS}
        self.session = Session()
        self.session.configure(lambda key: SETTINGS.get(key) or defaults[key])
        cases = self.session.cases()
        self.cases = sorted(cases, key=lambda c: c.model in EXPENSIVE)  # stable: zoo order otherwise

    def rows(self, converters):
        wanted = set(converters)
        return [c for c in self.cases if c.converter in wanted]

    def run(self, case):
        """``verify_case`` without the row's speed expectation: a RowRun, None if skipped."""
        s = self.session
        spec = replace(s.converters.get(case.converter), speed=())
        try:
            verdict = run_case(spec, lambda: s.cache.get(case.model), s.device(case.device), case.id,
                               case.model_label, s.case_settings())
        except Exception as e:  # the verifier itself broke: never a catch
            return RowRun(case.id, other=["the verifier crashed: {}: {}".format(type(e).__name__, e)])
        if verdict.skip:
            return None
        run = RowRun(case.id)
        for failure in verdict.failures:
            (run.verdicts if _VERDICT.match(failure) else run.other).append(first_line(failure, 300))
        return run

    def hunt(self, bug, stop_at_first=True):
        """Run ``bug``'s target rows with it planted, cheap models first; by default stop at
        the first row that catches it."""
        hunt = Hunt(bug.name)
        with bug.apply():
            for case in self.rows(bug.targets):
                run = self.run(case)
                if run is None:
                    continue
                hunt.runs.append(run)
                if run.verdicts and stop_at_first:
                    break
        return hunt


_MATRIX = []


@pytest.fixture
def matrix():
    """This process's :class:`Matrix` (built on first use, then reused)."""
    if os.environ.get("GCVERIFY_PLANT"):
        pytest.skip("GCVERIFY_PLANT is set: the converters are planted for the whole session")
    if not _MATRIX:
        _MATRIX.append(Matrix())
    return _MATRIX[0]


@pytest.fixture
def catalogue():
    import suites.planted_bugs as planted_bugs
    return planted_bugs
