"""Hunting planted bugs: the default matrix's rows run in-process against a bug of
:mod:`suites.planted_bugs`, one session per process, so that every built model and its
measured facts (reference outputs, noise floors) are reused by every bug that process hunts.

A row *catches* a bug with a verdict: a failed check of the converted graph (numbers,
layers, wiring, gradients, original untouched, quantization grid, low-rank bound, saved file),
or loudly, when our conversion itself raised (NNabla refusing the graph it builds: such a bug
cannot ship a green row). A graph that cannot run, a vacuous model or an exception escaping
the verifier are listed, but catch nothing: a verifier that crashes on a bug has not judged
it. Each case is the matrix row exactly as ``verify_case`` runs it, but without its speed
expectation: a speed check proves nothing about a wrong graph (and timings on 2 shared cores
are noise), while its sampling was a third of the CPU time.

``python -m suites.planted_bugs_hunt`` runs every bug against every one of its rows (not
stopping at the first catch) and prints the table of docs/planted_bugs.md.
"""
import re
import sys
from dataclasses import dataclass, field, replace
from typing import List

from gcverify.plugin.options import OPTIONS
from gcverify.plugin.session import Session
from gcverify.verify.case import run_case

VERDICT_CHECKS = ("numeric", "layers", "inputs", "gradients", "untouched", "random", "quantization",
                  "low_rank", "reference", "saved")
_VERDICT = re.compile(r"^\[({})\] ".format("|".join(VERDICT_CHECKS)))
_RAISED = re.compile(r"^the conversion raised ")  # case.py's words for our converter's exception
SETTINGS = {"gc_speed_repeats": "1"}  # the default matrix otherwise: default models, cpu (no speed: see run)
EXPENSIVE = ("resnet50",)  # run last: a cheap model catches most bugs first
PROPERTY = "gcverify.mutation"  # the user property a hunt's figures travel in (xdist too)


def first_line(text, width=90):
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[:width - 3] + "..."


@dataclass
class RowRun:
    """One case: its id, its verdict lines (failed checks), our conversion's exception and
    whatever else went wrong."""

    id: str
    model: str = ""
    verdicts: List[str] = field(default_factory=list)
    other: List[str] = field(default_factory=list)
    raised: List[str] = field(default_factory=list)

    @property
    def failed(self):
        return bool(self.verdicts or self.other or self.raised)

    @property
    def catches(self):
        return self.verdicts or self.raised


@dataclass
class Hunt:
    """A mutation against its rows: ``killed`` when a row failed a check."""

    name: str
    runs: List[RowRun] = field(default_factory=list)

    @property
    def killing(self):
        return [r for r in self.runs if r.catches]

    @property
    def killed(self):
        return bool(self.killing)

    def figures(self):
        """What the score table shows: rows run, rows failing a check, the first of them and
        its first failure; rows that failed without a verdict (raised, crashed) apart."""
        killing = self.killing
        silent = [r for r in self.runs if r.other and not r.catches]
        return dict(name=self.name, outcome="killed" if killing else "survived",
                    rows_run=len(self.runs), rows_failed=len(killing), not_verdicts=len(silent),
                    first_row=killing[0].id if killing else "-",
                    first_line=first_line(killing[0].catches[0]) if killing else "",
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

    def function_types(self, model):
        """The function types of the built ``model`` (a zoo name of this matrix). A layer
        whose weight the graph computes (a NoisyNet's) does not count: no weight quantizer
        touches it, so no weight bug can show there."""
        from converters.graph_view import GraphView, parameter_source
        from gcverify.core.expectations import INNER_PRODUCT
        built = self.session.cache.get(model)
        return {f.info.type_name for f in GraphView(built.outputs, built.params).functions
                if f.info.type_name not in INNER_PRODUCT or parameter_source(f.inputs[1]) is not None}

    def run(self, case):
        """``verify_case`` without the row's speed expectation: a RowRun, None if skipped."""
        s = self.session
        spec = replace(s.converters.get(case.converter), speed=())
        try:
            verdict = run_case(spec, lambda: s.cache.get(case.model), s.device(case.device), case.id,
                               case.model_label, s.case_settings())
        except Exception as e:  # the verifier itself broke: never a catch
            return RowRun(case.id, case.model, other=["the verifier crashed: {}: {}".format(type(e).__name__, e)])
        if verdict.skip:
            return None
        run = RowRun(case.id, case.model)
        for failure in verdict.failures:
            kind = run.verdicts if _VERDICT.match(failure) else run.raised if _RAISED.match(failure) else run.other
            kind.append(first_line(failure, 300))
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
                if run.catches and stop_at_first:
                    break
        return hunt


def check_of(line):
    """The check a catching line names (``numeric``...), or ``raised``."""
    m = _VERDICT.match(line)
    return m.group(1) if m else "raised"


def markdown_table(bugs, matrix=None):
    """The docs table: each bug, the checks that caught it and the models it was caught on."""
    matrix = matrix or Matrix()
    lines = ["| mutation | class | targets | caught by (check) | on models (rows that fail / rows run) |",
             "|---|---|---|---|---|"]
    killed = 0
    for bug in bugs:
        hunt = matrix.hunt(bug, stop_at_first=False)
        killing = hunt.killing
        killed += bool(killing)
        checks = sorted({check_of(line) for r in killing for line in r.catches[:1]})
        models = list(dict.fromkeys(r.model for r in killing))
        caught = ", ".join("`{}`".format(c) for c in checks) if killing else "survives: " + (bug.survives or "?")
        lines.append("| `{}` | {} | {} | {} | {} ({} / {}) |".format(
            bug.name, bug.kind, ", ".join(bug.targets), caught, ", ".join(models) or "-",
            len(killing), len(hunt.runs)))
    return lines, killed


def main(argv=None):
    import suites.planted_bugs as planted_bugs
    names = (argv if argv is not None else sys.argv[1:]) or planted_bugs.names()
    bugs = [planted_bugs.lookup(n) for n in names]
    lines, killed = markdown_table(bugs)
    print("\n".join(lines))
    print("\n{} of {} killed".format(killed, len(bugs)))


if __name__ == "__main__":
    main()
