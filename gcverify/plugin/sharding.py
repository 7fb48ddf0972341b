"""``--gc-shard=K/N``: which tests this pytest process runs, from the costs of the cases.

The plan itself (:class:`~gcverify.report.shards.ShardPlan`) balances case costs. A case's
cost is its measured ``duration`` in a previous report (``--gc-shard-costs=report.json``);
cases that report lacks get the static estimate below, scaled to seconds by the median
ratio of measured to estimated cost over the cases it has. Without a report every case
gets the static estimate, in units of a small zoo model's plain case (about 25 ms on CPU):
the model's weight (ResNet-50: 60; an ``.nnp`` file weighs by its size) times the
converter's (low rank's SVD of every weight: 40, QDQ's calibration: 8, channel-last through
the CPU emulation: 6, ...), plus a speed check where one applies on the case's device (timed
rounds of both graphs: 12 model weights plus 50). Read off two runs of the default matrix on
a 2-core CPU: it splits that matrix into 3 shards within 8% of the mean (by count: 54%
over); a previous report splits it within 2%.

Tests that are not matrix cases (a project's own tests in the same session) run in shard 1
only, so N shards still run everything exactly once.
"""
import os
import statistics

from ..report.files import ReportFileError, load_report
from ..report.shards import ShardPlan
from .options import SettingsError

__all__ = ["STATIC_MODEL_WEIGHT", "STATIC_CONVERTER_WEIGHT", "static_cost", "case_costs",
           "plan_shards", "split_items"]

STATIC_MODEL_WEIGHT = {"resnet50": 60.0, "resnet50-pretrained": 60.0}
STATIC_CONVERTER_WEIGHT = {"low_rank": 40.0, "qdq": 8.0, "channel_last": 6.0, "bn_fold_channel_last": 3.0,
                           "channel_roundtrip": 3.0, "fixed_point": 3.0, "statistics": 3.0}
SPEED_CHECK_WEIGHTS, SPEED_CHECK_FIXED = 12.0, 50.0  # small graphs: >= 50 ms per timed sample
NNP_MEGABYTES_PER_WEIGHT = 1.5  # resnet50's .nnp (~100 MB) weighs about what the zoo's does


def _model_weight(token):
    if token.endswith(".nnp") or ".nnp::" in token:
        path = token.split("::", 1)[0]
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        return max(1.0, size / 1e6 / NNP_MEGABYTES_PER_WEIGHT)
    return STATIC_MODEL_WEIGHT.get(token, 1.0)


def static_cost(case, spec, speed_repeats=5):
    """The estimated cost of ``case`` (a Session Case) converted by ``spec``, in units of a
    small zoo model's plain case; a speed check scales with ``speed_repeats`` (5 measured)."""
    weight = _model_weight(case.model)
    cost = weight * STATIC_CONVERTER_WEIGHT.get(case.converter, 1.0)
    if spec.speed_on(case.device) is not None:  # interleaved timed forwards of both graphs
        cost += (SPEED_CHECK_WEIGHTS * weight + SPEED_CHECK_FIXED) * speed_repeats / 5.0
    return cost


def case_costs(cases, estimate, previous_rows=None):
    """``({case id: cost}, where the costs came from)``. ``estimate(case)``: the static
    cost; ``previous_rows``: rows of an earlier report (their ``duration`` in seconds)."""
    static = {c.id: estimate(c) for c in cases}
    measured = {r.id: r.duration for r in previous_rows or () if r.duration is not None}
    known = [c for c in static if c in measured]
    if not known:
        why = "static estimate" if previous_rows is None else \
            "static estimate (the previous report has no durations for these cases)"
        return static, why
    scale = statistics.median(measured[c] / static[c] for c in known if static[c] > 0)
    costs = {c: measured[c] if c in measured else static[c] * scale for c in static}
    return costs, "durations of {} of {} cases from a previous report".format(len(known), len(static))


def plan_shards(session):
    """The ShardPlan of ``session``'s matrix under its ``--gc-shard`` setting."""
    settings = session.settings
    previous = None
    if settings.shard_costs:
        try:
            previous = load_report(settings.shard_costs)
        except ReportFileError as e:
            raise SettingsError("--gc-shard-costs: {}".format(e)) from None
    cases = session.cases()

    def estimate(case):
        return static_cost(case, session.converters.get(case.converter), settings.speed_repeats)
    costs, source = case_costs(cases, estimate, previous)
    if settings.shard_costs and previous is not None:
        source += " ({})".format(settings.shard_costs)
    return ShardPlan.make([c.id for c in cases], costs, settings.shard[1], source)


def split_items(items, plan, k):
    """``(kept, deselected)`` test items for shard ``k``: matrix cases of the plan's shard
    ``k``; other tests only in shard 1."""
    kept, dropped = [], []
    for item in items:
        case = getattr(getattr(item, "callspec", None), "params", {}).get("gc_case")
        mine = plan.assignment.get(case.id) == k if case is not None else k == 1
        (kept if mine else dropped).append(item)
    return kept, dropped
