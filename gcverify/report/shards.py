"""The matrix split across machines (``--gc-shard=K/N``), and the check that the shards'
reports add up to the whole matrix when they are merged (``gcverify report``).

A :class:`ShardPlan` gives every case to one of N shards by *longest processing time
first*: cases in decreasing cost (ties in matrix order), each to the shard whose total is
smallest so far (ties: the lowest number). It is deterministic, so every process that plans
from the same case list and costs (each xdist worker, each CI runner) gets the same plan,
and its largest shard is within 4/3 of the best possible split (Graham's bound).

Each shard's JSON report records the whole plan under ``shard``::

    {"index": K, "count": N, "matrix": <hash of the ordered case ids>,
     "plan": [[case id, shard], ...] (matrix order), "costs": <where the costs came from>}

so the merge can tell which shard is missing and which cases it should have held, and that
all reports are shards of one matrix (:func:`check_shards`).
"""
import hashlib
from dataclasses import dataclass
from typing import Dict

__all__ = ["ShardPlan", "matrix_hash", "check_shards", "in_matrix_order"]


def matrix_hash(case_ids):
    """A short fingerprint of the ordered case list: shards of one matrix share it."""
    return hashlib.sha256("\n".join(case_ids).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ShardPlan:
    count: int
    assignment: Dict[str, int]  # case id -> shard number (1-based), in matrix order
    costs: str = "static estimate"

    @classmethod
    def make(cls, case_ids, cost, count, costs="static estimate"):
        """Plan ``case_ids`` (matrix order) over ``count`` shards; ``cost[id]`` >= 0."""
        order = sorted(range(len(case_ids)), key=lambda i: (-cost[case_ids[i]], i))
        loads = [0.0] * count
        assignment = {}
        for i in order:
            k = min(range(count), key=lambda s: (loads[s], s))
            loads[k] += cost[case_ids[i]]
            assignment[case_ids[i]] = k + 1
        return cls(count, {c: assignment[c] for c in case_ids}, costs)

    @property
    def matrix(self):
        return matrix_hash(list(self.assignment))

    def cases_of(self, k):
        """The case ids of shard ``k``, in matrix order."""
        return [c for c, s in self.assignment.items() if s == k]

    def load(self, k, cost):
        return sum(cost[c] for c in self.cases_of(k))

    def document(self, k):
        """What shard ``k``'s report records (see the module docstring)."""
        return dict(index=k, count=self.count, matrix=self.matrix,
                    plan=[[c, s] for c, s in self.assignment.items()], costs=self.costs)

    @classmethod
    def from_document(cls, doc):
        return cls(int(doc["count"]), {str(c): int(s) for c, s in doc["plan"]},
                   str(doc.get("costs", "")))


def _valid(doc):
    try:
        plan = ShardPlan.from_document(doc)
        return 1 <= int(doc["index"]) <= plan.count and plan.matrix == doc["matrix"]
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def _listed(ids, limit=5):
    more = len(ids) - limit
    return ", ".join(ids[:limit]) + (" and {} more".format(more) if more > 0 else "")


def check_shards(reports):
    """Problems with merging ``reports`` (``(path, rows, document)`` triples) as shards: mixed
    matrices or plans, a shard given twice or missing, planned cases without a row. Empty
    when no report is a shard, or when the shards add up to their matrix."""
    sharded = [(path, rows, doc["shard"]) for path, rows, doc in reports if "shard" in doc]
    if not sharded:
        return []
    problems = ["{} has an invalid 'shard' record".format(path)
                for path, _, shard in sharded if not _valid(shard)]
    if problems:
        return problems
    whole = [path for path, _, doc in reports if "shard" not in doc]
    if whole:
        problems.append("{} {} not a shard but merged with shards; its rows are kept".format(
            ", ".join(whole), "is" if len(whole) == 1 else "are"))
    path0, _, first = sharded[0]
    plan = ShardPlan.from_document(first)
    seen = {}
    for path, rows, shard in sharded:
        if shard["matrix"] != first["matrix"] or shard["count"] != first["count"]:
            problems.append("{} is shard {}/{} of another matrix (case list {}) than {} (shard {}/{}, "
                            "case list {})".format(path, shard["index"], shard["count"], shard["matrix"],
                                                   path0, first["index"], first["count"], first["matrix"]))
            continue
        if shard["plan"] != first["plan"]:
            problems.append("{} (shard {}/{}) was planned from other costs ({}) than {} ({}): give "
                            "every shard the same --gc-shard-costs file".format(
                                path, shard["index"], shard["count"], shard.get("costs"), path0,
                                first.get("costs")))
            continue
        if shard["index"] in seen:
            problems.append("shard {}/{} appears twice: {} and {}".format(
                shard["index"], plan.count, seen[shard["index"]], path))
        seen.setdefault(shard["index"], path)
    ran = {r.id for _, rows, _ in sharded for r in rows}
    for k in range(1, plan.count + 1):
        cases = plan.cases_of(k)
        if k not in seen:
            problems.append("shard {}/{} is missing: no report holds its {} case(s) ({})".format(
                k, plan.count, len(cases), _listed(cases)))
            continue
        lost = [c for c in cases if c not in ran]
        if lost:
            problems.append("shard {}/{} ({}) has no row for {} of its {} case(s): {}".format(
                k, plan.count, seen[k], len(lost), len(cases), _listed(lost)))
    return problems


def in_matrix_order(rows, reports):
    """``rows`` sorted as the shards' plan lists the matrix (rows it does not list last, in
    the order given); unchanged when no report is a valid shard."""
    plan = next((ShardPlan.from_document(doc["shard"]) for _, _, doc in reports
                 if "shard" in doc and _valid(doc["shard"])), None)
    if plan is None:
        return list(rows)
    position = {c: i for i, c in enumerate(plan.assignment)}
    return sorted(rows, key=lambda r: position.get(r.id, len(position)))
