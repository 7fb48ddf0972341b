"""The speed check of a case: the converted graph against the original, per the converter's
:class:`~gcverify.core.expectations.Speed` expectation, judged by :mod:`.timing`.

CPU rows are timed in process CPU time (NNabla's CPU backend runs one thread per process,
so another process's load does not count); cudnn rows in wall time with the device
synchronised around every sample. Only a confident miss fails; "inconclusive" is shown with
its interval and fails only with ``speed_strict`` (quiet benchmark machines).
"""
import time

from .results import CheckResult
from .timing import check_speed

__all__ = ["speed_check"]


def speed_check(run_original, run_converted, expectation, device, settings, clock=None):
    """A CheckResult ``speed`` for the pair, with the figures a row keeps (``clock``: the
    device's by default; injectable for tests)."""
    cpu = device.name == "cpu"
    result = check_speed(run_original, run_converted, expectation.min_ratio or 1.0,
                         clock=clock or (time.process_time if cpu else time.perf_counter),
                         synchronize=None if cpu else device.synchronizer(),
                         min_seconds=expectation.min_seconds, max_rounds=settings.speed_rounds,
                         max_seconds=settings.speed_seconds)
    judged = result.verdict != "not judged"
    passed = expectation.min_ratio is None or result.passed(strict=settings.speed_strict)
    summary = "original {:.4g} s, converted {:.4g} s: {} ({})".format(
        result.time_original, result.time_converted, result.describe(), expectation.describe())
    if not passed:
        summary = ("too slow: " if result.verdict == "missed" else "not shown fast enough: ") + summary
    return CheckResult("speed", passed, summary, [], dict(
        time_original=result.time_original, time_converted=result.time_converted,
        speed_ratio=result.ratio, speed_low=result.low, speed_high=result.high,
        speed_confidence=result.confidence,
        speed_rounds=result.rounds, speed_verdict=result.verdict, speed_judged=judged))
