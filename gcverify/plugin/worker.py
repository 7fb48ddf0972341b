"""Worker side: run one case for a test item, turn its verdict into the test's outcome and
put its row on the test report as JSON (what pytest-xdist carries to the controller and
JUnit XML records as properties)."""
import json

import pytest

__all__ = ["ROW_PROPERTY", "verify_case", "enforce", "attach_row", "outcome_of"]

ROW_PROPERTY = "gcverify.row"
_JUNIT_FIELDS = ("converter", "model", "device", "outcome", "functions_before", "functions_after",
                 "max_abs_error", "max_rel_error", "tolerance", "conversion_time", "speed_ratio")


def verify_case(session, case):
    """Run ``case`` (a :class:`~gcverify.plugin.session.Case`) in ``session``: a Verdict."""
    from ..verify.case import run_case
    spec = session.converters.get(case.converter)
    return run_case(spec, lambda: session.cache.get(case.model), session.device(case.device),
                    case.id, case.model_label, session.case_settings())


def enforce(verdict):
    """Turn a verdict into the test's outcome: skip, xfail (a peer's failure), or fail."""
    __tracebackhide__ = True
    if verdict.skip:
        verdict.row.message = verdict.skip
        pytest.skip(verdict.skip)
    if not verdict.failures:
        return
    verdict.row.message = verdict.summary()
    if verdict.peer:  # the reason shows in one line of the summary: lead with the diagnosis
        pytest.xfail("expected failure of NNabla's built-in (peer): " + verdict.row.message)
    pytest.fail(verdict.message(), pytrace=False)


def outcome_of(report):
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def attach_row(item, report, row):
    """Put the finished row on the test report and on the item's user properties."""
    row.outcome = outcome_of(report)
    row.duration = round(report.duration, 4)  # what --gc-shard-costs balances shards by
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        row.message = str(report.longrepr[2]).replace("Skipped: ", "", 1)
    elif report.failed and not row.message:
        lines = str(getattr(report, "longreprtext", "") or "").strip().splitlines()
        row.message = lines[-1] if lines else "failed"
    doc = row.to_json()
    props = [(ROW_PROPERTY, json.dumps(doc, sort_keys=True, default=str))]
    props += [("gc_" + k, doc[k]) for k in _JUNIT_FIELDS if doc.get(k) is not None]
    report.user_properties.extend(props)
    item.user_properties.extend(props)
