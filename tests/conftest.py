import os
import pathlib

import numpy as np
import pytest

from converters.graph_view import all_parameters
from gcverify.testing import SUITE_SOURCE


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture(autouse=True)
def global_scope_untouched():
    """Every test must leave NNabla's global parameter scope exactly as it found it."""
    before = {k: (id(v), v.d.copy()) for k, v in all_parameters().items()}
    yield
    after = all_parameters()
    assert set(after) == set(before), "global parameter scope changed: {}".format(
        sorted(set(after) ^ set(before))[:10])
    for k, (ident, data) in before.items():
        assert id(after[k]) == ident and np.array_equal(after[k].d, data), k


DATA = pathlib.Path(__file__).resolve().parent / "data"


@pytest.fixture
def downstream_conftest():
    """The source of tests/data/downstream_conftest.py: a tiny model and a converter of its
    own, registered the way users do."""
    return (DATA / "downstream_conftest.py").read_text()


@pytest.fixture
def project(pytester, downstream_conftest):
    """A downstream project (that conftest plus the verification suite) for real pytest sessions."""
    pytester.makeconftest(downstream_conftest)
    pytester.makepyfile(test_suite=SUITE_SOURCE)
    return pytester


def pytest_addoption(parser):
    """Options of the random-graph fuzz suite (tests/test_fuzz.py); each defaults to its env var."""
    group = parser.getgroup("gc-fuzz", "random-graph fuzzing of the converters")
    env = os.environ.get
    group.addoption("--gc-fuzz-graphs", type=int, default=int(env("GC_FUZZ_GRAPHS", "2000")),
                    help="random graphs per converter (env GC_FUZZ_GRAPHS, default 2000)")
    group.addoption("--gc-fuzz-seed", type=int, default=int(env("GC_FUZZ_SEED", "0")),
                    help="first seed; graph i uses seed+i (env GC_FUZZ_SEED, default 0)")
    group.addoption("--gc-fuzz-targets", default=env("GC_FUZZ_TARGETS", ""),
                    help="comma list of fuzz targets (env GC_FUZZ_TARGETS, default all)")
    group.addoption("--gc-fuzz-save", default=env("GC_FUZZ_SAVE", "tests/regressions"),
                    help="where shrunk reproducers are written; empty: nowhere (env GC_FUZZ_SAVE)")


def pytest_report_header(config):
    return "gc-fuzz: {} graphs per converter from seed {} (replay: GC_FUZZ_SEED=<seed> GC_FUZZ_GRAPHS=1)".format(
        config.getoption("gc_fuzz_graphs"), config.getoption("gc_fuzz_seed"))


MUTATION_PROPERTY = "gcverify.mutation"  # suites/planted_bugs_hunt.py PROPERTY (not imported: heavy)


def pytest_terminal_summary(terminalreporter):
    """The mutation score table, when planted-bug hunts ran (their figures come as a user
    property of each test report, so the xdist controller sees the workers' too)."""
    import json
    hunts = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == MUTATION_PROPERTY and getattr(report, "when", "call") == "call":
                    doc = json.loads(value)
                    hunts[doc["name"]] = doc
    if not hunts:
        return
    from tabulate import tabulate

    def why(h):
        if h["outcome"] == "killed":
            return h["first_line"]
        text = "survives: " + (h["survives"] or "(no reason given)")[:75]
        return text + ("; without a verdict: " + h["other"] if h["other"] else "")
    rows = [(h["name"], h["outcome"], h["rows_run"], h["rows_failed"], h["not_verdicts"], h["first_row"], why(h))
            for h in sorted(hunts.values(), key=lambda h: (h["outcome"], h["name"]))]
    killed = sum(1 for h in hunts.values() if h["outcome"] == "killed")
    terminalreporter.write_sep("=", "mutation score")
    terminalreporter.write_line(tabulate(rows, ["mutation", "outcome", "rows run", "rows failed", "no verdict",
                                                "first failing row", "its first failure / why it survives"]))
    terminalreporter.write_line("mutation score: {} of {} planted bugs killed ({:.0%}), {} survive; "
                                "'no verdict': rows that failed without a check (raised, crashed)".format(
                                    killed, len(hunts), killed / len(hunts), len(hunts) - killed))
