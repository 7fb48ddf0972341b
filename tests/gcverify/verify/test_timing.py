"""The timing method under an injected noisy clock: no real time is measured here.

``NoisyMachine`` is a fake process clock. A callable "works" by advancing it by its nominal
seconds times the machine's slowdown at that moment: heavy-tailed noise per call (|Student
t| with 3 degrees of freedom on the log scale), a drifting load (an AR(1) random walk),
occasional 3x spikes hitting whichever side runs at that moment, and correlated bursts
(a run of calls all 2x slower). Both sides share the machine, as on a real one.
"""
import itertools
import json
import math
import statistics

import numpy as np
import pytest

from gcverify.verify import timing
from gcverify.verify.timing import check_speed, measure_speed, signed_rank_interval

TRIALS = 2000
T = 0.05  # nominal seconds per call of the original, above min_seconds = 0.02


class NoisyMachine:
    def __init__(self, seed, noise=0.08, drift=0.02, spike_rate=0.03, burst_rate=0.02):
        self.rng = np.random.RandomState(seed)
        self.noise, self.drift = noise, drift
        self.spike_rate, self.burst_rate = spike_rate, burst_rate
        self.now = 0.0
        self.load = 0.0  # log slowdown, drifting
        self.burst = 0  # calls left in the current burst
        self.calls = 0

    def clock(self):
        return self.now

    def work(self, seconds):
        rng = self.rng
        self.calls += 1
        self.load = 0.98 * self.load + self.drift * rng.standard_normal()
        # noise only ever slows a call down, as on a real machine; the load drifts both ways
        factor = math.exp(self.load + self.noise * abs(rng.standard_t(3)))
        if rng.random_sample() < self.spike_rate:
            factor *= 3.0
        if self.burst:
            factor *= 2.0
            self.burst -= 1
        elif rng.random_sample() < self.burst_rate:
            self.burst = rng.randint(2, 12)
        self.now += seconds * factor

    def task(self, seconds):
        return lambda: self.work(seconds)


def run_check(seed, original=T, converted=T, required=0.9, **kw):
    m = NoisyMachine(seed, **{k: kw.pop(k) for k in list(kw) if k in ("noise", "drift",
                                                                      "spike_rate", "burst_rate")})
    return check_speed(m.task(original), m.task(converted), required, clock=m.clock, **kw)


def old_method(seed, original=T, converted=T, required=0.9, repeats=5):
    """Today's rule on the same machine: median of 5 alternating rounds, ratio >= 0.9."""
    m = NoisyMachine(seed)
    runs = (m.task(original), m.task(converted))
    for run in runs:  # warm-up
        run()
    times = ([], [])
    for i in range(repeats):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            t0 = m.clock()
            runs[k]()
            times[k].append(m.clock() - t0)
    return statistics.median(times[0]) / statistics.median(times[1]) >= required


# --- the statistics -----------------------------------------------------------------------

def test_signed_rank_distribution_is_exact_for_small_n():
    for n in range(1, 9):
        sums = [sum(r for r, plus in zip(range(1, n + 1), signs) if plus)
                for signs in itertools.product((False, True), repeat=n)]
        exact = np.cumsum(np.bincount(sums, minlength=n * (n + 1) // 2 + 1)) / 2 ** n
        np.testing.assert_allclose(timing._signed_rank_cdf(n), exact)
    # textbook two-sided 5% critical values: T <= 25 at n = 15, T <= 52 at n = 20
    assert timing._critical_rank(15, 0.05) == 26 and timing._critical_rank(20, 0.05) == 53


def test_interval_covers_the_centre_at_its_level():
    rng = np.random.RandomState(1)
    alpha, n, trials = 0.1, 12, 4000
    missed = 0
    for _ in range(trials):
        d = 0.3 + rng.standard_t(2, n)  # heavy-tailed, symmetric about 0.3
        est, lo, hi = signed_rank_interval(d, alpha)
        assert lo <= est <= hi
        missed += not lo <= 0.3 <= hi
    # exact level is <= alpha (discrete); and not absurdly conservative either
    assert 0.5 * alpha * trials < missed <= alpha * trials * 1.1


def test_too_few_rounds_give_no_interval():
    est, lo, hi = signed_rank_interval([0.1, 0.2, 0.3], alpha=0.01)  # 2 / 2^3 > 0.01
    assert lo is None and hi is None and est == pytest.approx(0.2)


def test_look_schedule_grows_and_ends_at_the_budget():
    assert timing.look_schedule(20, 80) == [20, 40, 80]
    assert timing.look_schedule(16, 50, growth=1.5) == [16, 24, 36, 50]
    assert timing.look_schedule(10, 10) == [10]
    assert timing.look_schedule(2, 5, growth=1.1) == [2, 3, 4, 5]


# --- verdicts on the noisy machine --------------------------------------------------------

def test_a_truly_equal_pair_is_never_missed():
    verdicts = [run_check(seed).verdict for seed in range(TRIALS)]
    assert "missed" not in verdicts
    assert verdicts.count("met") > TRIALS // 10  # and the method is not merely mute


def test_a_pair_at_exactly_the_requirement_fails_at_most_at_the_stated_rate():
    stated = (1 - 0.9999) / 2  # module docstring: alpha / 2 per row, over all looks
    verdicts = [run_check(seed, converted=T / 0.9).verdict for seed in range(TRIALS)]
    # Poisson(TRIALS * stated = 0.1): P(X > 2) < 2e-4, so only a broken bound lands here
    assert verdicts.count("missed") <= 2 and TRIALS * stated == pytest.approx(0.1)
    assert verdicts.count("met") <= 2  # the interval errs above as rarely


def test_the_old_rule_flakes_on_the_same_machine():
    old_fails = sum(not old_method(seed) for seed in range(TRIALS))
    new_fails = sum(not run_check(seed).passed() for seed in range(TRIALS))
    assert old_fails > TRIALS // 50  # > 2 % of CI runs fail on an unchanged, equal pair
    assert new_fails == 0


def test_a_planted_one_and_a_half_times_slowdown_is_missed():
    results = [run_check(seed, converted=1.5 * T) for seed in range(300)]
    assert all(r.verdict == "missed" and not r.passed() for r in results)
    assert all(r.high < 0.9 for r in results)
    assert statistics.median(r.ratio for r in results) == pytest.approx(1 / 1.5, rel=0.05)


def test_a_clear_two_times_speedup_is_met_early():
    results = [run_check(seed, converted=T / 2) for seed in range(300)]
    assert all(r.verdict == "met" and r.passed(strict=True) for r in results)
    assert all(r.rounds <= 40 and r.stopped == "decided" for r in results)  # early stop
    assert sum(r.rounds == 20 for r in results) > 0.9 * len(results)
    assert all(r.low >= 0.9 for r in results)


def test_high_noise_is_inconclusive_and_shows_the_interval():
    r = run_check(3, converted=T / 0.95, noise=0.6, max_seconds=1e9)
    assert r.verdict == "inconclusive" and r.passed() and not r.passed(strict=True)
    assert r.low < 0.9 < r.high and r.rounds == 80
    line = r.describe()
    assert line.startswith("{:.3g}x [{:.3g}, {:.3g}] over 80 rounds: inconclusive against "
                           ">= 0.9x".format(r.ratio, r.low, r.high))
    assert "round budget of 80 spent" in line


def test_the_time_budget_stops_the_rounds():
    r = run_check(0, converted=T / 0.95, noise=0.6, max_seconds=1.0)
    assert r.verdict == "inconclusive" and "time budget" in r.stopped
    assert r.seconds >= 1.0 and r.seconds - 1.0 < 2 * (r.seconds / r.rounds)  # one round over
    assert r.rounds < 20 and r.low is None and "[no interval yet]" in r.describe()


def test_a_too_fast_original_is_not_judged_after_one_round():
    m = NoisyMachine(0)
    r = check_speed(m.task(0.001), m.task(0.002), 0.9, clock=m.clock)
    assert r.verdict == "not judged" and r.passed(strict=True) and r.rounds == 1
    assert r.loops[0] >= 20 and r.time_original < 0.02
    # warm-up (1 + 1), calibration (a growing series: < 2x its last term), one round
    assert m.calls <= 2 + 3 * (r.loops[0] + r.loops[1])
    assert "not judged (the original runs in" in r.describe()


def test_fast_callables_are_looped_to_the_minimum_sample():
    m = NoisyMachine(0, noise=0.0, drift=0.0, spike_rate=0.0, burst_rate=0.0)
    r = measure_speed(m.task(0.0001), m.task(0.00005), rounds=5, clock=m.clock,
                      min_sample=0.01)
    assert r.loops[0] * 0.0001 >= 0.01 and r.loops[1] * 0.00005 >= 0.01
    assert r.time_original == pytest.approx(0.0001) and r.ratio == pytest.approx(2.0)


def test_freeing_what_a_call_returns_is_not_timed():
    m = NoisyMachine(0, noise=0.0, drift=0.0, spike_rate=0.0, burst_rate=0.0)

    class Graph:  # a result that is slow to free
        def __del__(self):
            m.work(0.5)

    def convert():
        m.work(0.03)
        return Graph()
    r = measure_speed(convert, m.task(0.03), rounds=6, clock=m.clock)
    assert r.time_original == pytest.approx(0.03) and r.ratio == pytest.approx(1.0)


def test_synchronize_runs_around_every_sample_on_a_wall_clock():
    m, events = NoisyMachine(0), []

    def run(seconds):
        def go():
            events.append("run")
            m.work(seconds)
        return go
    r = measure_speed(run(0.03), run(0.03), rounds=4, clock=m.clock,
                      synchronize=lambda: events.append("sync"))
    assert r.rounds == 4
    runs = [i for i, e in enumerate(events) if e == "run"][2:]  # after the warm-up
    assert all(events[i + 1] == "sync" for i in runs)  # loops are 1: each sample synced


def test_measure_speed_gives_a_ratio_with_its_interval():
    covered = 0
    for seed in range(200):
        m = NoisyMachine(seed)
        r = measure_speed(m.task(0.03), m.task(0.02), rounds=20, clock=m.clock)
        assert r.verdict == "measured" and r.rounds == 20 and r.required is None
        assert r.low <= r.ratio <= r.high
        covered += r.low <= 1.5 <= r.high
    assert covered >= 0.9 * 200  # a 95% interval (the noise is not exactly symmetric)
    assert r.describe().endswith("over 20 rounds (95% interval)")


def test_result_is_json_friendly():
    r = run_check(0, converted=T / 2)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["verdict"] == "met" and d["rounds"] == r.rounds and d["low"] == r.low
    assert set(d) >= {"time_original", "time_converted", "ratio", "low", "high", "rounds",
                      "verdict", "required"}


@pytest.mark.parametrize("kw", [dict(required=0), dict(required=-1.0), dict(min_sample=0),
                                dict(confidence=1.0), dict(max_seconds=float("inf"))])
def test_bad_arguments_are_refused(kw):
    args = dict(required=0.9)
    args.update(kw)
    with pytest.raises(ValueError):
        check_speed(lambda: None, lambda: None, args.pop("required"), **args)


def test_a_stuck_clock_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="clock"):
        measure_speed(lambda: None, lambda: None, clock=lambda: 0.0)
