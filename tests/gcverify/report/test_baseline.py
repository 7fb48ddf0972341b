"""Baselines: what is saved, what counts as a regression, and bad files."""
import pytest

from gcverify.report.baseline import Baseline, Thresholds
from gcverify.report.files import report_document, ReportFileError, write_json_atomic


def saved(*rows):
    b = Baseline()
    b.update(rows)
    return b


def test_same_row_compares_clean(row):
    c = saved(row()).compare(row())
    assert c.status == "compared" and not c.regressed


def test_layer_count_change_is_a_regression(row):
    c = saved(row()).compare(row(histogram_after={"Convolution": 2, "BatchNormalization": 1}))
    assert c.problems == ["layer counts after conversion changed: BatchNormalization 0->1"]


def test_error_growth_beyond_the_factor_is_a_regression(row):
    base = saved(row(normalized_error=1e-6))
    assert not base.compare(row(normalized_error=3.9e-6)).regressed
    c = base.compare(row(normalized_error=5e-6))
    assert c.regressed and "normalized error grew 1e-06 -> 5e-06 (limit 4x" in c.problems[0]
    assert not base.compare(row(normalized_error=5e-6), Thresholds(error_factor=10)).regressed


def test_errors_below_the_float_floor_never_count(row):
    base = saved(row(normalized_error=0.0))  # exact converters
    assert not base.compare(row(normalized_error=3e-6)).regressed
    assert base.compare(row(normalized_error=1e-4)).regressed


def test_speed_ratio_drop_beyond_margin_is_a_regression(row):
    base = saved(row(speed_ratio=1.6))
    assert not base.compare(row(speed_ratio=1.3)).regressed
    c = base.compare(row(speed_ratio=1.1))
    assert c.problems == ["speed ratio dropped 1.60x -> 1.10x (margin 25%)"]


def test_rows_of_another_machine_are_not_compared(row):
    c = saved(row(machine="gpu-box")).compare(row(histogram_after={}, speed_ratio=0.1))
    assert c.status == "not compared" and "gpu-box" in c.note and not c.regressed
    assert saved(row()).compare(row("identity")).status == "new"


def test_only_rows_that_ran_are_saved(row):
    b = saved(row(), row("x", outcome="skipped", histogram_after=None), row("y", outcome="failed"),
              row("nnabla_bn_fold", outcome="xfailed"))
    assert sorted(k.split(" @ ")[0] for k in b.entries) == ["bn_fold-lenet-cpu", "nnabla_bn_fold-lenet-cpu"]


def test_save_keeps_entries_of_other_rows_and_round_trips(tmp_path, row):
    path = str(tmp_path / "b.json")
    assert Baseline.save_rows(path, [row()]) == 1
    assert Baseline.save_rows(path, [row("identity", machine="m2")]) == 1
    loaded = Baseline.load(path)
    assert len(loaded.entries) == 2
    assert not loaded.compare(row()).regressed


def test_refuses_to_overwrite_a_file_that_is_not_a_baseline(tmp_path, row):
    path = str(tmp_path / "report.json")
    write_json_atomic(path, report_document([row()]))
    before = open(path).read()
    with pytest.raises(ReportFileError, match="is not a gcverify baseline"):
        Baseline.save_rows(path, [row()])
    assert open(path).read() == before


@pytest.mark.parametrize("content, message", [
    (None, "no baseline file at .* \\(create one with --gc-save-baseline="),
    ('{"format": "gcverify-baseline", "version": 1, "entr', "corrupt or truncated"),
    ('{"format": "gcverify-baseline", "version": 1, "entries": {"a": {}}}', "no valid 'entries'"),
    ('{"format": "other-tool"}', "is not a gcverify baseline")])
def test_bad_baselines_get_clear_messages(tmp_path, content, message):
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportFileError, match=message):
        Baseline.load(str(path))


def test_unjudged_speed_ratios_are_not_compared(row):
    base = saved(row(speed_ratio=1.6, speed_judged=False))
    assert not base.compare(row(speed_ratio=0.5, speed_judged=False)).regressed
