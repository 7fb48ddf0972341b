"""Baselines: what is saved, what counts as a regression, and bad files."""
import json

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


# --- errors as multiples of the noise floor (baseline version 3) --------------------------

def floored(row, floor, multiple, conv="bn_fold", **kw):
    """A row judged against its noise floor: its error is ``multiple`` times ``floor``."""
    return row(conv, noise_floor=floor, noise_multiple=multiple, normalized_error=floor * multiple,
               rms_error=floor * multiple / 10, **kw)


def test_entries_keep_the_noise_floor_and_the_multiple(row):
    entry = next(iter(saved(floored(row, 2e-7, 1.5)).entries.values()))
    assert entry["noise_floor"] == 2e-7 and entry["noise_multiple"] == 1.5


def test_an_error_grown_3x_relative_to_the_floor_is_a_regression(row):
    base = saved(floored(row, 1e-6, 1.0))
    c = base.compare(floored(row, 1e-6, 3.0))  # the planted regression: 3x the floor multiple
    assert c.problems == ["error grew 1x -> 3x the noise floor (floor 1e-06 -> 1e-06; limit 2.5x the "
                          "baseline's multiple, which counts as at least 1)"]
    assert not base.compare(floored(row, 1e-6, 2.4)).regressed
    assert not base.compare(floored(row, 1e-6, 3.0), Thresholds(multiple_factor=4)).regressed


def test_a_floor_that_moves_with_the_error_is_no_regression(row):
    """Another NNabla or machine: floor and error x10 together, the multiple unchanged. Raw
    errors would have grown 10x, beyond the factor of 4."""
    base = saved(floored(row, 1e-7, 1.5))
    c = base.compare(floored(row, 1e-6, 1.5))
    assert c.status == "compared" and not c.regressed
    assert "noise floor 1e-07 -> 1e-06: errors compared as multiples of it" in c.note
    assert base.compare(floored(row, 1e-6, 4.0)).regressed  # ...yet growth against it counts


def test_multiples_within_the_rounding_noise_never_count(row):
    base = saved(floored(row, 1e-7, 0.0))  # an exact conversion
    assert not base.compare(floored(row, 1e-7, 2.5)).regressed
    assert base.compare(floored(row, 1e-7, 2.6)).regressed


def test_rows_without_a_floor_keep_the_raw_comparison(row):
    base = saved(row(normalized_error=1e-6, tolerance_preset="quantizer"))
    assert base.compare(row(normalized_error=5e-6)).problems[0].startswith("normalized error grew")
    # an entry with a floor, the row now under a fixed tolerance (--gc-tolerance=float32-fixed)
    assert saved(floored(row, 1e-7, 1.0)).compare(row(normalized_error=1e-3)).regressed


OLD_FILE = {"format": "gcverify-baseline", "version": 2, "entries": {"bn_fold-lenet-cpu @ m1": {
    "converter": "bn_fold", "model": "lenet", "device": "cpu", "machine": "m1", "outcome": "passed",
    "histogram_before": {"Convolution": 2, "BatchNormalization": 3}, "histogram_after": {"Convolution": 2},
    "max_abs_error": 3e-6, "normalized_error": 1e-6, "rms_error": 1e-7, "speed_ratio": 1.2}}}


def test_an_old_file_without_floors_loads_and_compares_raw(tmp_path, row):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD_FILE))
    base = Baseline.load(str(path))
    assert base.version == 2
    same = base.compare(floored(row, 1e-7, 10.0))  # normalized error 1e-6, as recorded
    assert same.status == "compared" and not same.regressed
    assert "the baseline has no noise floor for this row: errors compared raw" in same.note
    grown = base.compare(floored(row, 1e-7, 50.0))
    assert grown.problems[0].startswith("normalized error grew 1e-06 -> 5e-06")
    # saving into it writes version 3 and keeps its entry, now compared by multiples
    Baseline.save_rows(str(path), [floored(row, 1e-7, 1.0, "identity")])
    doc = json.loads(path.read_text())
    assert doc["version"] == 3 and len(doc["entries"]) == 2


def test_a_newer_baseline_version_is_refused_by_name(tmp_path):
    path = tmp_path / "new.json"
    path.write_text(json.dumps(dict(OLD_FILE, version=4)))
    with pytest.raises(ReportFileError, match="has version 4; this gcverify reads versions 1, 2, 3"):
        Baseline.load(str(path))
