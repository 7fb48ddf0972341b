"""The matrix benchmarks' own arithmetic (no timing is asserted: only what the benchmarks
compute from given times), and that the phases they wrap still exist in gcverify."""
import importlib
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_matrix  # noqa: E402
import bench_process  # noqa: E402
import matrix_phases  # noqa: E402
import speed_under_load  # noqa: E402
import bench_converters  # noqa: E402


@pytest.mark.parametrize("name", bench_converters.FAMILIES + bench_converters.ON_REQUEST)
def test_every_benchmark_imports_against_todays_gcverify(name):
    # the benchmarks run only by hand: a moved gcverify module must fail here, not there
    assert callable(importlib.import_module(name).main)


def test_bench_converters_runs_every_benchmark_file():
    files = {p.stem for p in BENCHMARKS.glob("bench_*.py")} - {"bench_converters", "bench_common", "bench_process"}
    assert files == set(bench_converters.FAMILIES + bench_converters.ON_REQUEST) - {"speed_under_load"}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_phase_clock_charges_each_second_to_the_innermost_phase():
    clock = FakeClock()
    phases = matrix_phases.PhaseClock(clock)

    def inner():
        clock.now += 2.0

    def outer():
        clock.now += 1.0
        phases.wrap("inner", inner)()
        clock.now += 0.5
    phases.wrap("outer", outer)()
    clock.now += 10.0  # outside every phase: charged to none
    assert phases.totals == {"outer": 1.5, "inner": 2.0}
    assert phases.calls == {"outer": 1, "inner": 1}


def test_phase_clock_leaves_the_phase_when_the_call_raises():
    clock = FakeClock()
    phases = matrix_phases.PhaseClock(clock)

    def boom():
        clock.now += 1.0
        raise ValueError
    with pytest.raises(ValueError):
        phases.wrap("boom", boom)()
    assert phases.stack == [] and phases.totals == {"boom": 1.0}


def test_every_wrapped_phase_exists_and_is_restored():
    from gcverify.verify import case
    before = {attr: getattr(case, attr) for attr, _ in matrix_phases.CASE_FUNCTIONS}
    undo = matrix_phases.install(matrix_phases.PhaseClock())
    try:
        assert all(hasattr(getattr(case, attr), "__wrapped_phase__") for attr in before)
    finally:
        matrix_phases.uninstall(undo)
    assert {attr: getattr(case, attr) for attr in before} == before
    from gcverify.verify.snapshot import Snapshot
    assert isinstance(Snapshot.__dict__["take"], classmethod)


def test_phase_table_adds_processes_and_splits_what_no_row_spent():
    docs = [dict(phases={"conversion": 2.0, "speed timing": 5.0}, process_cpu=8.0),
            dict(phases={"conversion": 1.0}, process_cpu=2.0)]
    table = bench_matrix.phase_table(docs, total_cpu=12.0)
    assert [(name, s) for name, s, _ in table] == [
        ("speed timing", 5.0), ("conversion", 3.0), (bench_matrix.WORKER_REST, 2.0),
        (bench_matrix.CONTROLLER, 2.0)]
    assert sum(share for _, _, share in table) == pytest.approx(1.0)


@pytest.mark.parametrize("output, n", [
    ("....\n489 rows: 320 passed\n320 passed, 160 xfailed, 9 skipped in 45.10s\n", 489),
    ("95 passed, 24 xfailed, 3 deselected in 32.32s", 119),
    ("no summary here", None)])
def test_tests_counted_reads_pytests_closing_line(output, n):
    assert bench_process.tests_counted(output) == n


def test_bootstrap_interval_brackets_the_median_ratio():
    med, lo, hi = bench_process.bootstrap_ratio([2.0, 2.2, 1.8, 2.1, 1.9, 2.0], [1.0] * 6)
    assert med == pytest.approx(2.0) and 1.8 <= lo <= med <= hi <= 2.2
    assert bench_process.bootstrap_ratio([1, 2, 3], [1, 1, 1]) == bench_process.bootstrap_ratio(
        [1, 2, 3], [1, 1, 1])  # a fixed seed: the same figures every time


def test_slowed_spends_the_planted_share_of_cpu_after_each_call():
    clock = FakeClock()

    def forward():
        clock.now += 0.2
        return "out"

    def ticking_clock():  # the spin loop reads the clock; each read moves it a little
        clock.now += 0.001
        return clock.now
    run = speed_under_load.slowed(forward, 1.5, ticking_clock)
    t0 = clock.now
    assert run() == "out"
    assert clock.now - t0 == pytest.approx(0.3, abs=0.01)


def test_the_hog_stops_its_processes():
    with speed_under_load.Hog(n=1, seconds=30) as hog:
        assert all(p.is_alive() for p in hog.procs)
    assert not any(p.is_alive() for p in hog.procs)
