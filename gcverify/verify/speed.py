"""Speed of the converted graph against the original, per the converter's expectation."""
import statistics
import time

from .results import CheckResult

__all__ = ["time_interleaved", "speed_check"]


def time_interleaved(run_a, run_b, synchronize=lambda: None, warmup=1, repeats=5,
                     min_sample=0.05):
    """Median seconds per call of ``run_a`` and ``run_b``, alternating which goes first each
    round so that load on a shared machine hits both alike. Fast graphs are called several
    times per sample (at least ``min_sample`` seconds) so timer noise does not dominate."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        run_a(), run_b()
    synchronize()
    per_pair = (time.perf_counter() - t0) / max(warmup, 1)
    loops = max(1, int(min_sample / max(per_pair / 2, 1e-6)))
    times = {run_a: [], run_b: []}
    for i in range(repeats):
        for run in ((run_a, run_b) if i % 2 == 0 else (run_b, run_a)):
            t0 = time.perf_counter()
            for _ in range(loops):
                run()
            synchronize()
            times[run].append((time.perf_counter() - t0) / loops)
    return statistics.median(times[run_a]), statistics.median(times[run_b])


def speed_check(t_original, t_converted, expectation):
    ratio = t_original / t_converted if t_converted > 0 else float("inf")
    need = expectation.min_ratio
    enforced = t_original >= expectation.min_seconds
    passed = need is None or ratio >= need or not enforced
    summary = "original {:.4g} s, converted {:.4g} s: {:.2f}x ({})".format(
        t_original, t_converted, ratio, expectation.describe())
    if not enforced:
        summary += "; not judged: the original runs in under {:g} s".format(expectation.min_seconds)
    if not passed:
        summary = "too slow: " + summary
    return CheckResult("speed", passed, summary, [], dict(
        time_original=t_original, time_converted=t_converted, speed_ratio=ratio,
        speed_judged=enforced))
