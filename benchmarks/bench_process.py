"""Whole commands timed side by side: process CPU time of a finished command, paired rounds.

A command's cost here is the CPU time (user + system) of the process and every descendant
it waited for, read from ``resource.getrusage(RUSAGE_CHILDREN)`` before and after it runs
(pytest-xdist waits for its workers, so their CPU counts). CPU time, not wall time: on a
2-core machine shared with others, waiting for a core is not the command's work.

Two commands are compared through gcverify's one timing helper
(``gcverify.verify.timing.measure_speed``) with that clock: one warm-up run of each, one
calibration run of each, then paired rounds in alternating order (AB, BA, ...), so load
that drifts during the benchmark hits both sides alike. Each side's runs are also recorded
one by one, which gives the medians and a bootstrap interval on the ratio beside the
helper's exact signed-rank interval: the median of the per-round ratios, resampled over
rounds (10,000 resamples, fixed seed), 2.5th to 97.5th percentile. With few rounds (a
matrix run takes a minute) the signed-rank interval may not exist yet at 95 %; the
bootstrap always gives one, but it under-covers at small counts, so read it as a spread.
"""
import os
import re
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gcverify.verify.timing import measure_speed  # noqa: E402

__all__ = ["children_cpu", "Command", "paired", "bootstrap_ratio", "show_pair", "tests_counted"]

PYTHON = sys.executable


def children_cpu():
    """CPU seconds (user + system) of every child process this one has waited for so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Command:
    """A command run in ``cwd`` with ``PYTHONPATH=pythonpath``; each run's CPU is kept."""

    label: str
    argv: List[str]
    cwd: str
    pythonpath: str
    extra_env: dict = field(default_factory=dict)
    cpu: List[float] = field(default_factory=list)
    codes: List[int] = field(default_factory=list)
    last_output: str = ""
    failures: List[str] = field(default_factory=list)  # pytest's FAILED lines of runs that failed

    def __call__(self):
        env = dict(os.environ, PYTHONPATH=self.pythonpath, **self.extra_env)
        env.pop("PYTEST_ADDOPTS", None)  # the caller's pytest options are not the benchmark's
        t0 = children_cpu()
        done = subprocess.run(self.argv, cwd=self.cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        self.cpu.append(children_cpu() - t0)
        self.codes.append(done.returncode)
        self.last_output = done.stdout
        if done.returncode:
            self.failures += [ln for ln in done.stdout.splitlines() if ln.startswith("FAILED")] or [
                "exit {}: {}".format(done.returncode, done.stdout.strip().splitlines()[-1:])]
        return done.returncode


def paired(a, b, rounds, max_seconds=3600.0):
    """``measure_speed(a, b)`` on the children's CPU clock; returns (SpeedResult, the CPU
    of each counted run of ``a``, of ``b``), warm-up and calibration runs left out."""
    r = measure_speed(a, b, rounds=rounds, clock=children_cpu, min_sample=1e-3, warmup=1,
                      max_seconds=max_seconds)
    return r, a.cpu[-r.rounds:], b.cpu[-r.rounds:]


def bootstrap_ratio(xa, xb, resamples=10000, seed=0):
    """(median of xa_i / xb_i, 2.5th and 97.5th percentile of that median over resamples
    of the rounds)."""
    ratios = np.asarray(xa, float) / np.asarray(xb, float)
    rng = np.random.RandomState(seed)
    picks = rng.randint(0, ratios.size, size=(resamples, ratios.size))
    medians = np.median(ratios[picks], axis=1)
    return float(np.median(ratios)), float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def show_pair(label, r, xa, xb, names, per=None):
    """Print both medians, the ratio a/b with its intervals; ``per``: (count a, count b) to
    show CPU per item as well (e.g. per matrix row)."""
    med, lo, hi = bootstrap_ratio(xa, xb)
    sr = "[{:.3f}, {:.3f}]".format(r.low, r.high) if r.low is not None else "[too few rounds]"
    print("  {}: {} median {:.2f} s CPU (min {:.2f}, max {:.2f}), {} median {:.2f} s CPU "
          "(min {:.2f}, max {:.2f}), {} rounds".format(
              label, names[0], statistics.median(xa), min(xa), max(xa), names[1],
              statistics.median(xb), min(xb), max(xb), r.rounds), flush=True)
    print("    ratio {}/{}: {:.3f}, bootstrap 95% [{:.3f}, {:.3f}]; Hodges-Lehmann {:.3f}, "
          "signed-rank 95% {}".format(names[0], names[1], med, lo, hi, r.ratio, sr), flush=True)
    if per:
        pa = [x / per[0] for x in xa]
        pb = [x / per[1] for x in xb]
        pmed, plo, phi = bootstrap_ratio(pa, pb)
        print("    per test: {} {:.1f} ms ({} tests), {} {:.1f} ms ({} tests); ratio {:.3f} "
              "[{:.3f}, {:.3f}]".format(names[0], 1e3 * statistics.median(pa), per[0], names[1],
                                        1e3 * statistics.median(pb), per[1], pmed, plo, phi),
              flush=True)
    return med, lo, hi


_COUNT = re.compile(r"(\d+) (passed|failed|xfailed|xpassed|skipped|errors?|deselected)")


def tests_counted(output):
    """Tests that ran, from pytest's closing line (deselected ones left out); None if absent."""
    lines = [ln for ln in output.splitlines() if re.search(r" in [\d.]+s", ln) and _COUNT.search(ln)]
    if not lines:
        return None
    counts = {kind: int(n) for n, kind in _COUNT.findall(lines[-1])}
    return sum(n for kind, n in counts.items() if kind != "deselected")
