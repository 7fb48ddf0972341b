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
