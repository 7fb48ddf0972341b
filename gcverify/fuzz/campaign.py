"""Fuzz one converter over a range of seeds: check each graph, shrink and save failures.

``run_fuzz(target, seeds)`` returns a :class:`FuzzReport` with how many graphs converted,
were refused or failed, and for each failure the shrunk recipe and, with ``save_dir``, the
path of the regression test written for it. Nothing is kept between calls.
"""
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional

from .generator import generate
from .harness import check
from .reproducer import write_regression
from .shrink import failure_predicate, shrink

__all__ = ["run_fuzz", "FuzzReport", "FuzzFailure"]


@dataclass
class FuzzFailure:
    seed: int
    outcome: object
    original_nodes: int
    shrunk: object
    shrunk_outcome: object
    path: Optional[str] = None

    def report(self):
        lines = ["seed {} ({} nodes): {}".format(self.seed, self.original_nodes, self.outcome.summary()),
                 "shrunk to {} nodes: {}".format(len(self.shrunk), self.shrunk_outcome.summary())]
        lines += ["    " + line for line in self.shrunk.describe().splitlines()]
        if self.path:
            lines.append("reproducer: {}".format(self.path))
        return "\n".join(lines)


@dataclass
class FuzzReport:
    target: str
    seeds: range
    counts: Counter = field(default_factory=Counter)
    failures: List[FuzzFailure] = field(default_factory=list)
    seconds: float = 0.0
    changed: int = 0  # converted graphs that differ from the original (not a no-op)

    @property
    def graphs(self):
        return sum(self.counts.values())

    def summary(self):
        return "{}: seeds {}..{}: {} graphs in {:.1f}s ({:.0f}/s): {}, {} changed by the conversion".format(
            self.target, self.seeds.start, self.seeds.stop - 1, self.graphs, self.seconds,
            self.graphs / max(self.seconds, 1e-9), dict(self.counts), self.changed)

    def details(self):
        return "\n\n".join([self.summary()] + [f.report() for f in self.failures])


def run_fuzz(target, seeds, options=None, save_dir=None, target_ref=None, max_failures=3,
             shrink_budget=400):
    """Check ``target`` on ``generate(seed, options=options)`` for every seed.

    Stops after ``max_failures`` failures (each is shrunk, which costs up to
    ``shrink_budget`` checks). ``target_ref`` is how a reproducer names the target
    (default ``target.name``, right for the built-in list).
    """
    report = FuzzReport(target.name, seeds)
    start = time.perf_counter()
    for seed in seeds:
        recipe = generate(seed, options=options)
        try:
            model = recipe.build()
        except Exception as e:  # the generator's fault, not the converter's
            raise RuntimeError("gcverify.fuzz generated an invalid graph for seed {} ({}):\n{}".format(
                seed, e, recipe.describe())) from e
        outcome = check(target, model)
        report.counts[outcome.status] += 1
        report.changed += outcome.changed
        if outcome.ok:
            continue
        small = shrink(recipe, failure_predicate(target, outcome.kind), options, shrink_budget)
        small_outcome = check(target, small.build())
        failure = FuzzFailure(seed, outcome, len(recipe), small, small_outcome)
        if save_dir:
            failure.path = write_regression(save_dir, target_ref or target.name, small, small_outcome,
                                            original_size=len(recipe))
        report.failures.append(failure)
        if len(report.failures) >= max_failures:
            break
    report.seconds = time.perf_counter() - start
    return report
