"""Shard plans (longest processing time first) and the merge gate that checks shards add up:
unit tests, and the ``gcverify report`` command on shard reports."""
import io
import json
import random

import pytest

from gcverify.cli import main
from gcverify.report.files import read_report, report_document, write_json_atomic
from gcverify.report.row import Row
from gcverify.report.shards import ShardPlan, check_shards, in_matrix_order, matrix_hash

IDS = ["c{}".format(i) for i in range(10)]


def _costs(values):
    return dict(zip(IDS, values))


def test_every_case_lands_in_exactly_one_shard_the_same_way_every_time():
    cost = _costs([5, 1, 1, 8, 2, 2, 3, 1, 9, 4])
    plan = ShardPlan.make(IDS, cost, 3)
    assert sorted(c for k in (1, 2, 3) for c in plan.cases_of(k)) == sorted(IDS)
    assert plan == ShardPlan.make(IDS, dict(reversed(list(cost.items()))), 3)  # order of the dict
    assert list(plan.assignment) == IDS  # matrix order kept


def test_the_longest_cases_go_first_to_the_least_loaded_shard():
    plan = ShardPlan.make(IDS[:5], _costs([10, 7, 6, 5, 4]), 2)
    # 10 -> 1; 7 -> 2; 6 -> 2 (7 < 10); 5 -> 1 (13 > 15? no: 10 < 13); 4 -> 2 (15 < 13? no) -> 1
    assert plan.cases_of(1) == ["c0", "c3"] and plan.cases_of(2) == ["c1", "c2", "c4"]
    # equal costs: the lower shard number wins, so one shard of many cheap cases stays even
    even = ShardPlan.make(IDS, _costs([1] * 10), 3)
    assert [len(even.cases_of(k)) for k in (1, 2, 3)] == [4, 3, 3]


@pytest.mark.parametrize("seed", range(20))
def test_the_largest_shard_is_within_four_thirds_of_the_best_split(seed):
    rng = random.Random(seed)
    ids = ["c{}".format(i) for i in range(rng.randint(3, 40))]
    cost = {c: rng.expovariate(1.0) for c in ids}
    n = rng.randint(2, 5)
    plan = ShardPlan.make(ids, cost, n)
    best_possible = max(max(cost.values()), sum(cost.values()) / n)  # a lower bound of the optimum
    assert max(plan.load(k, cost) for k in range(1, n + 1)) <= 4 / 3 * best_possible + 1e-9


def test_more_shards_than_cases_leaves_some_empty():
    plan = ShardPlan.make(IDS[:2], _costs([1, 1]), 3)
    assert plan.cases_of(3) == []


def test_the_plan_survives_a_json_report_round_trip(tmp_path):
    plan = ShardPlan.make(IDS, _costs(range(10)), 3, "static estimate")
    path = str(tmp_path / "s.json")
    write_json_atomic(path, report_document([], plan.document(2)))  # keys get sorted on disk
    _, doc = read_report(path)
    assert ShardPlan.from_document(doc["shard"]) == plan
    assert doc["shard"]["matrix"] == matrix_hash(IDS) and doc["shard"]["index"] == 2


def _shards(row, plan, ran=None, matrix=None):
    """Reports of each shard of ``plan`` holding rows for its cases (or those in ``ran``)."""
    reports = []
    for k in range(1, plan.count + 1):
        doc = report_document([], plan.document(k))
        if matrix:
            doc["shard"]["matrix"] = matrix
        rows = [Row(c, outcome="passed", machine="m1") for c in plan.cases_of(k) if ran is None or c in ran]
        reports.append(("s{}.json".format(k), rows, doc))
    return reports


def test_complete_shards_have_no_problem(row):
    plan = ShardPlan.make(IDS, _costs([1] * 10), 3)
    assert check_shards(_shards(row, plan)) == []
    assert check_shards([("a.json", [row("x")], report_document([]))]) == []  # no shards at all


def test_a_missing_shard_is_named_with_its_cases(row):
    plan = ShardPlan.make(IDS, _costs([1] * 10), 3)
    reports = _shards(row, plan)
    del reports[1]
    assert check_shards(reports) == [
        "shard 2/3 is missing: no report holds its 3 case(s) (c1, c4, c7)"]


def test_a_shard_given_twice_or_from_another_plan_or_matrix_is_refused(row):
    plan = ShardPlan.make(IDS, _costs([1] * 10), 2)
    reports = _shards(row, plan)
    twice = check_shards(reports + [("again.json",) + reports[0][1:]])
    assert twice == ["shard 1/2 appears twice: s1.json and again.json"]
    other = ShardPlan.make(IDS, _costs([9, 1, 1, 1, 1, 1, 1, 1, 1, 1]), 2, "a previous report")
    mixed = check_shards([reports[0], _shards(row, other)[1]])
    assert len(mixed) == 2 and "planned from other costs (a previous report) than s1.json" in mixed[0]
    assert mixed[1].startswith("shard 2/2 is missing")
    other_matrix = ShardPlan.make(IDS + ["c10"], dict(_costs([1] * 10), c10=1), 2)
    foreign = _shards(row, other_matrix)[1]
    assert "s2.json is shard 2/2 of another matrix (case list {})".format(other_matrix.matrix) in \
        check_shards([reports[0], foreign])[0]
    edited = _shards(row, plan, matrix="0123456789abcdef")[1]  # a plan that does not fit its hash
    assert check_shards([reports[0], edited]) == ["s2.json has an invalid 'shard' record"]


def test_a_planned_case_without_a_row_is_named(row):
    plan = ShardPlan.make(IDS, _costs([1] * 10), 2)
    problems = check_shards(_shards(row, plan, ran=set(IDS) - {"c4"}))
    assert problems == ["shard 1/2 (s1.json) has no row for 1 of its 5 case(s): c4"]


def test_merged_rows_come_in_matrix_order(row):
    plan = ShardPlan.make(IDS, _costs([1] * 10), 3)
    reports = _shards(row, plan)
    rows = [row("extra")] + [r for _, shard_rows, _ in reports for r in shard_rows]
    assert [r.id for r in in_matrix_order(rows, reports)] == IDS + ["extra-lenet-cpu"]


def _write_shards(tmp_path, row, plan, skip=()):
    paths = []
    for path, rows, doc in _shards(row, plan):
        if path in skip:
            continue
        doc["rows"] = [r.to_json() for r in rows]
        write_json_atomic(str(tmp_path / path), doc)
        paths.append(str(tmp_path / path))
    return paths


def test_the_merge_command_is_the_gate(tmp_path, row):
    plan = ShardPlan.make(IDS, _costs([1] * 10), 3)
    paths = _write_shards(tmp_path, row, plan)
    merged, page = str(tmp_path / "m.json"), str(tmp_path / "m.html")
    out = io.StringIO()
    assert main(["report"] + paths + ["--json", merged, "--html", page], out) == 0
    assert [r["id"] for r in json.loads(open(merged).read())["rows"]] == IDS
    assert "html: 10 rows written to" in out.getvalue() and "<template id=" in open(page).read()
    out = io.StringIO()
    assert main(["report"] + [p for p in paths if not p.endswith("s3.json")] + ["--html", page], out) == 1
    assert "SHARDS: shard 3/3 is missing: no report holds its 3 case(s) (c2, c5, c8)" in out.getvalue()
    assert "shards: shard 3/3 is missing" in open(page).read()  # the page says so too


def test_the_merge_refuses_to_overwrite_what_is_not_its_own(tmp_path, row, capsys):
    paths = _write_shards(tmp_path, row, ShardPlan.make(IDS, _costs([1] * 10), 2))
    assert main(["report"] + paths + ["--html", paths[0]]) == 2
    assert "refusing to replace it (not a gcverify HTML report)" in capsys.readouterr().err
    assert main(["report"] + paths + ["--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
