"""Rows, table, atomic JSON files, merging shards and the ``python -m gcverify report`` command."""
import io
import json
import os

import pytest

from gcverify.cli import main
from gcverify.report.baseline import Baseline
from gcverify.report.files import load_report, merge_rows, read_json, report_document, REPORT_FORMAT, ReportFileError, write_json_atomic
from gcverify.report.table import NOTE_WIDTH, details, error, speed, table




def test_table_has_one_line_per_row_with_the_figures(row):
    text = table([row(), row("identity", outcome="xfailed", message="x" * 200)])
    lines = text.splitlines()
    assert len(lines) == 4
    assert "12 -> 9" in lines[2] and "-3 BatchNormalization" in lines[2] and "1.20x" in lines[2]
    assert "float32" in lines[2] and "3e-06 / 1e-05" in lines[2]
    assert lines[3].rstrip().endswith("...") and len(lines[3]) < 260


def test_errors_judged_against_the_noise_floor_show_its_multiple(row):
    assert error(row(noise_multiple=0.31)) == "3e-06 (0.31x floor)"
    assert error(row()) == "3e-06 / 1e-05"  # a fixed tolerance: absolute / relative
    assert error(row(max_abs_error=None)) == "-"


@pytest.mark.parametrize("fields, shown", [
    (dict(speed_judged=False), "(1.20x)"),
    (dict(speed_judged=True, speed_verdict="met"), "1.20x"),
    (dict(speed_judged=True, speed_verdict="inconclusive"), "1.20x ?"),
    (dict(speed_judged=True, speed_verdict="missed"), "1.20x slower"),
])
def test_the_speed_cell_says_how_the_ratio_was_judged(row, fields, shown):
    assert speed(row(**fields)) == shown


def test_details_give_what_the_cells_cut_but_not_for_expected_failures(row):
    long = "[numeric] outputs differ: max abs 0.0201 (max|y| 1.19), max rel 0.0273; tolerance exact"
    assert len(long) > NOTE_WIDTH
    rows = [row(outcome="failed", message=long),
            row("bn_fold", "resnet50", speed_judged=True, speed_verdict="inconclusive", speed_low=0.8,
                speed_high=1.3, speed_rounds=80, speed_confidence=0.9999666, kept=["kept BatchNormalization 'bn' (valid: ...)"]),
            row("nnabla_bn_fold", outcome="xfailed", message=long)]
    lines = details(rows)
    assert lines == ["note  bn_fold-lenet-cpu: " + long,
                     "speed bn_fold-resnet50-cpu: 1.20x, 99.9967% interval [0.80, 1.30] over 80 paired rounds: "
                     "inconclusive",
                     "kept  bn_fold-resnet50-cpu: kept BatchNormalization 'bn' (valid: ...)"]
    assert long[:NOTE_WIDTH - 3] in table(rows)  # the cell holds its start


def test_notes_that_say_the_same_on_several_models_share_a_line(row):
    saying = "saved: unsaveable: MinMaxMinMaxRecorder 'Convolution-{}' is a Python function ({} in all), " \
             "which NNabla's .nnp format cannot hold"
    rows = [row("qat_recording", m, message=saying.format(i, 10 + i)) for i, m in enumerate(["lenet", "unet", "lstm"])]
    rows.append(row("qat_recording", "attention", message="[numeric] outputs differ: " + "x" * NOTE_WIDTH))
    lines = details(rows)
    assert lines == ["note  qat_recording on cpu 3 models (lenet, unet, lstm): " + saying.format(0, 10)
                     + " (on lenet; names and numbers vary)",
                     "note  qat_recording-attention-cpu: [numeric] outputs differ: " + "x" * NOTE_WIDTH]


def test_a_passed_quantizer_row_notes_its_sqnr_and_top1(row):
    text = table([row("qdq", sqnr_db=32.94, top1_agreement=1.0)])
    assert "SQNR 32.9 dB, top-1 100%" in text


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, row):
    path = str(tmp_path / "r.json")
    write_json_atomic(path, report_document([row()]))
    before = open(path).read()
    with pytest.raises(TypeError):
        write_json_atomic(path, {"rows": [object()]})
    assert open(path).read() == before
    assert [p for p in os.listdir(tmp_path) if p != "r.json"] == []  # no temp file left
    assert load_report(path)[0].id == "bn_fold-lenet-cpu"


def test_unwritable_destinations_are_named(tmp_path):
    with pytest.raises(ReportFileError, match="does not exist"):
        write_json_atomic(str(tmp_path / "no" / "r.json"), {})
    with pytest.raises(ReportFileError, match="is a directory"):
        write_json_atomic(str(tmp_path), {})


@pytest.mark.parametrize("content, message", [
    (None, "no report file at"), ("", "is empty"), ('{"format": "gcverify-report", "rows": [',
                                                    "corrupt or truncated"),
    ('{"format": "junit"}', "is not a gcverify report"), ("[1, 2]", "is not a gcverify report"),
    ('{"format": "gcverify-report", "version": 99}', "has version 99"),
    ('{"format": "gcverify-report", "version": 1, "rows": {}}', "no valid 'rows'"),
    ('{"format": "gcverify-report", "version": 1, "rows": [{}]}', "invalid row: a row is a JSON object with a string 'id'"),
    ('{"format": "gcverify-report", "version": 2, "rows": [{"id": "x", "row_version": 7}]}', "row_version 7")])
def test_bad_report_files_get_clear_errors_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportFileError, match=message) as info:
        load_report(str(path))
    assert str(path) in str(info.value)


def test_merge_keeps_other_machines_and_warns_on_duplicates(row):
    a = [row(), row("identity")]
    b = [row(machine="m2"), row("identity", speed_ratio=2.0)]
    rows, warnings = merge_rows([("a.json", a), ("b.json", b)])
    assert len(rows) == 3
    assert warnings == ["identity-lenet-cpu appears again in b.json; keeping that one"]
    assert [r for r in rows if r.id == "identity-lenet-cpu"][0].speed_ratio == 2.0


def test_cli_merges_shards_and_compares_with_a_baseline(tmp_path, row):
    a, b, base = (str(tmp_path / n) for n in ("a.json", "b.json", "base.json"))
    write_json_atomic(a, report_document([row()]))
    write_json_atomic(b, report_document([row("identity")]))
    out = io.StringIO()
    assert main(["report", a, b, "--save-baseline", base], out) == 0
    assert "2 rows from 2 report(s): 2 passed" in out.getvalue()
    assert len(Baseline.load(base).entries) == 2
    # A shard that got worse: one more function left after the conversion.
    write_json_atomic(b, report_document([row("identity", histogram_after={"Convolution": 3})]))
    out = io.StringIO()
    assert main(["report", a, b, "--baseline", base], out) == 1
    assert "REGRESSION identity-lenet-cpu: layer counts after conversion changed: Convolution 2->3" in out.getvalue()


def test_cli_bad_file_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "cut.json"
    bad.write_text(json.dumps({"format": REPORT_FORMAT, "version": 1, "rows": []})[:-5])
    assert main(["report", str(bad)]) == 2
    assert "cut.json is corrupt or truncated" in capsys.readouterr().err


def test_read_json_checks_the_format(tmp_path):
    p = tmp_path / "x.json"
    write_json_atomic(str(p), {"format": "gcverify-baseline", "version": 1})
    with pytest.raises(ReportFileError, match="expected 'gcverify-report'"):
        read_json(str(p), REPORT_FORMAT, "report")
