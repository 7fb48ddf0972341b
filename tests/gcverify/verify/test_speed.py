"""The speed check of a case: the expectation, the device's clock and the verdict's figures,
driven by a fake clock (each call advances it by the graph's cost)."""
import pytest

from gcverify.core.expectations import Speed
from gcverify.verify.case import CaseSettings
from gcverify.verify.devices import Device
from gcverify.verify.speed import speed_check


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def graph(self, seconds):
        def run():
            self.now += seconds
        return run


def _check(original, converted, expectation, **settings):
    clock = FakeClock()
    return speed_check(clock.graph(original), clock.graph(converted), expectation, Device("cpu"),
                       CaseSettings(**settings), clock=clock)


def test_a_clear_speed_up_is_met_with_its_interval():
    result = _check(0.2, 0.1, Speed("cpu", min_ratio=1.5))
    assert result.passed and result.figures["speed_verdict"] == "met"
    assert result.figures["speed_ratio"] == pytest.approx(2.0)
    assert result.figures["speed_low"] <= 2.0 <= result.figures["speed_high"]


def test_a_planted_1_5x_slowdown_is_a_confident_miss():
    result = _check(0.2, 0.3, Speed("cpu", min_ratio=0.9))
    assert not result.passed and result.figures["speed_verdict"] == "missed"
    assert result.summary.startswith("too slow: original 0.2 s, converted 0.3 s: 0.667x")


def test_inconclusive_passes_unless_strict():
    # the budget allows one round: no interval exists yet, so the verdict cannot be confident
    loose = _check(0.2, 0.2, Speed("cpu", min_ratio=0.9), speed_rounds=1)
    assert loose.passed and loose.figures["speed_verdict"] == "inconclusive"
    strict = _check(0.2, 0.2, Speed("cpu", min_ratio=0.9), speed_rounds=1, speed_strict=True)
    assert not strict.passed and strict.summary.startswith("not shown fast enough")


def test_graphs_too_fast_to_judge_are_shown_not_judged_after_one_round():
    result = _check(0.001, 0.002, Speed("cpu", min_ratio=0.9))
    assert result.passed and result.figures["speed_verdict"] == "not judged"
    assert result.figures["speed_judged"] is False and result.figures["speed_rounds"] == 1


def test_a_measured_only_expectation_never_fails():
    assert _check(0.2, 0.4, Speed("cpu")).passed
