"""The bad-input matrix (docs/bad_inputs.md) on the plugin's side: option values checked in
process (``Session.configure``, what the plugin turns into usage errors), and real pytest
sessions (pytester): broken ``.nnp`` files in ``--gc-models``, unknown names in the ini file,
report and baseline paths that cannot or must not be written, and two xdist workers whose
rows all reach one report and one baseline. Sessions are small: the tiny model of
tests/plugin_project.py or LeNet, one or two converters. Every test also checks that files
already on disk are left as they were.
"""
import json
import os
import tempfile

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest

import converters as GC
from gcverify.report.baseline import Baseline
from gcverify.core.model import ModelSpec
from gcverify.report.files import report_document, ReportFileError, write_json_atomic
from gcverify.plugin.worker import verify_case
from gcverify.report.row import Row
from gcverify.plugin.options import OPTIONS, SettingsError
from gcverify.plugin.session import Case, Session
from gcverify.zoo.seeding import randomize_parameters

TINY = ("--gc-models=tiny", "--gc-converters=identity")


# === in process: the checks behind the plugin ==================================================
def _options(**values):
    """``get(ini_key)`` as the plugin gives it to ``Session.configure``: these values, else defaults."""
    defaults = {key: default for _, key, _, default in OPTIONS}
    return lambda key: values.get(key) or defaults[key]


def _training_model(seed=0):
    """conv -> BN in training mode -> ReLU -> affine."""
    x = nn.Variable((4, 3, 8, 8))
    h = PF.batch_normalization(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1"), batch_stat=True, name="bn1")
    y = PF.affine(F.relu(h), 5, name="fc")
    randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
    return x, y


# --- 3. a training-mode BN in a matrix row --------------------------------------------------
def test_the_matrix_row_of_a_training_bn_passes_and_says_why_it_stayed():
    session = Session()
    session.models.add(ModelSpec("training", _training_model))
    session.configure(_options(gc_models="training", gc_converters="bn_fold"))
    with pytest.warns(GC.ConversionWarning, match="batch_stat=True"):
        verdict = verify_case(session, Case("bn_fold", "training", "training", "cpu"))
    assert verdict.failures == [], verdict.message()  # keeping it is right, and the verifier agrees
    assert verdict.row.kept == ["kept BatchNormalization 'bn1/bn': batch_stat=True (training mode): it "
                                "normalizes with batch statistics, so folding the running statistics would "
                                "change its output (valid: it normalizes with batch statistics (batch_stat=True))"]


# --- 6. unknown names ---------------------------------------------------------------------------
@pytest.mark.parametrize("values, culprit", [
    ({"gc_models": "lenet,resnt50"}, "unknown model 'resnt50'; known models: lenet"),
    ({"gc_device": "tpu"}, "unknown device 'tpu'; choose from cpu, cudnn"),
    ({"gc_converters": "identity,fold"}, "'fold' matches no converter; known converters: bn_fold"),
])
def test_unknown_names_in_settings_are_settings_errors_listing_the_known_ones(values, culprit):
    with pytest.raises(SettingsError, match=culprit):
        Session().configure(_options(**values))


# --- 7. baseline and report files --------------------------------------------------------------
def _configure(**values):
    Session().configure(_options(**values))


def _write_baseline(path):
    Baseline({"identity-lenet-cpu @ m": {"histogram_after": {"ReLU": 1}}}).save(str(path))
    return path.read_bytes()


@pytest.mark.parametrize("which", ["gc_baseline", "gc_save_baseline"])
def test_a_report_path_that_names_the_baseline_is_refused(tmp_path, which):
    base = tmp_path / "base.json"
    before = _write_baseline(base)
    option = "--" + which.replace("_", "-")
    with pytest.raises(SettingsError, match="--gc-report and {} both name .*base.json; the report would "
                                            "overwrite the baseline".format(option)):
        _configure(gc_report=str(base), **{which: str(base)})
    assert base.read_bytes() == before


@pytest.mark.parametrize("existing, option, culprit", [
    ("baseline", "gc_report", "is not a gcverify report \\(format 'gcverify-baseline'"),
    ("report", "gc_save_baseline", "is not a gcverify baseline \\(format 'gcverify-report'"),
    ("text", "gc_report", "is corrupt or truncated"),
    ("truncated-baseline", "gc_save_baseline", "is corrupt or truncated"),
])
def test_an_output_never_replaces_a_file_of_another_kind(tmp_path, existing, option, culprit):
    path = tmp_path / "out.json"
    if existing == "baseline":
        _write_baseline(path)
    elif existing == "report":
        write_json_atomic(str(path), report_document([]))
    elif existing == "text":
        path.write_text("my notes, not JSON\n")
    else:
        path.write_bytes(_write_baseline(path)[:-9])
    before = path.read_bytes()
    with pytest.raises(SettingsError, match="--{} .*out.json: refusing to replace it \\(.*{}".format(
            option.replace("_", "-"), culprit)):
        _configure(**{option: str(path)})
    assert path.read_bytes() == before


def test_the_same_kind_of_file_or_an_empty_one_may_be_replaced(tmp_path):
    report, base, empty = tmp_path / "r.json", tmp_path / "b.json", tmp_path / "e.json"
    write_json_atomic(str(report), report_document([]))
    _write_baseline(base)
    empty.write_text("")
    _configure(gc_report=str(report), gc_save_baseline=str(base), gc_baseline=str(base))
    _configure(gc_report=str(empty))
    assert Baseline.save_rows(str(empty), []) == 0 and Baseline.load(str(empty)).entries == {}


@pytest.mark.parametrize("where, culprit", [
    ("missing/out.json", "directory .*missing does not exist"),
    ("adir", "adir is a directory, not a file"),
    ("/dev/null", "/dev/null exists and is not a regular file"),
])
@pytest.mark.parametrize("option", ["gc_report", "gc_save_baseline"])
def test_an_output_path_that_cannot_be_written_is_a_settings_error(tmp_path, where, culprit, option):
    (tmp_path / "adir").mkdir()
    path = where if where.startswith("/") else str(tmp_path / where)
    with pytest.raises(SettingsError, match="--{} .*{}".format(option.replace("_", "-"), culprit)):
        _configure(**{option: path})
    assert os.path.isdir(str(tmp_path / "adir")) and not os.path.exists(str(tmp_path / "missing"))


def test_a_read_only_directory_is_refused_and_its_files_kept(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    path = locked / "base.json"
    before = _write_baseline(path)
    locked.chmod(0o555)
    try:
        if os.access(str(locked), os.W_OK):
            pytest.skip("running as root: a read-only mode does not stop writes here "
                        "(test_a_write_that_fails_after_the_checks_keeps_the_old_file covers it)")
        with pytest.raises(SettingsError, match="--gc-save-baseline .*locked is not writable"):
            _configure(gc_save_baseline=str(path))
        with pytest.raises(ReportFileError, match="locked is not writable"):
            Baseline.save_rows(str(path), [])
    finally:
        locked.chmod(0o755)
    assert path.read_bytes() == before


def test_a_write_that_fails_after_the_checks_keeps_the_old_file(tmp_path, monkeypatch):
    """What a read-only mount or a race does where the directory looks writable (root)."""
    path = tmp_path / "base.json"
    before = _write_baseline(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ReportFileError, match="cannot write baseline .*base.json: .*Permission denied"):
        Baseline.save_rows(str(path), [Row("identity-lenet-cpu", outcome="passed",
                                           histogram_after={"ReLU": 1}, machine="m")])
    assert path.read_bytes() == before and os.listdir(str(tmp_path)) == ["base.json"]


# === pytest sessions ==========================================================================
# --- 5. empty, corrupt or missing .nnp through --gc-models -----------------------------------
@pytest.mark.parametrize("content, reason", [
    (b"", "not a readable .nnp file (BadZipFile: File is not a zip file): empty.nnp"),
    (b"PK\x03\x04 not really a zip", "not a readable .nnp file (BadZipFile: *): empty.nnp")])
def test_a_broken_nnp_is_a_usage_error_at_start_naming_the_file_and_the_reason(project, content, reason):
    (project.path / "empty.nnp").write_bytes(content)
    result = project.runpytest("--gc-models=tiny,empty.nnp", "--gc-converters=identity,nnabla_bn_fold",
                               "--gc-report=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gcverify: " + reason + "*"])
    assert not (project.path / "r.json").exists()  # nothing ran, nothing was written
    assert (project.path / "empty.nnp").read_bytes() == content


def test_a_missing_nnp_is_a_usage_error_naming_the_path(project):
    result = project.runpytest("--gc-models=tiny,models/missing.nnp", "--gc-converters=identity")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gcverify: no .nnp file at 'models/missing.nnp'*"])


# --- 6. unknown names in the ini file (the command line: test_plugin_options.py) ----------------
@pytest.mark.parametrize("ini, message", [
    ("gc_models = tiny, lenett", "*gcverify: unknown model 'lenett'; known models: lenet, resnet50*tiny*"),
    ("gc_device = gpu0", "*gcverify: unknown device 'gpu0'; choose from cpu, cudnn (or both)*"),
    ("gc_converters = identity, bn_folding", "*gcverify: --gc-converters: 'bn_folding' matches no converter; "
                                             "known converters: bn_fold, bn_linear*relu_to_leaky*"),
])
def test_unknown_names_in_the_ini_file_are_usage_errors_listing_the_known_ones(project, ini, message):
    project.makeini("[pytest]\n" + ini + "\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


# --- 7. report and baseline paths --------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    (("--gc-baseline=base.json", "--gc-report=base.json"),
     "*gcverify: --gc-report and --gc-baseline both name base.json; the report would overwrite the baseline*"),
    (("--gc-report=base.json",),
     "*gcverify: --gc-report base.json: refusing to replace it (base.json is not a gcverify report "
     "(format 'gcverify-baseline'*"),
    (("--gc-save-baseline=adir",), "*gcverify: --gc-save-baseline adir is a directory, not a file*"),
    (("--gc-save-baseline=no/such/dir/base.json",), "*gcverify: --gc-save-baseline no/such/dir/base.json: "
                                                   "directory */no/such/dir does not exist*"),
])
def test_unwritable_or_clashing_outputs_are_usage_errors_before_any_test_runs(project, options, message):
    before = _write_baseline(project.path / "base.json")
    project.mkdir("adir")
    result = project.runpytest(*TINY, *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert (project.path / "base.json").read_bytes() == before
    assert sorted(os.listdir(str(project.path / "adir"))) == []


def test_outputs_whose_directory_vanished_during_the_run_fail_the_session_naming_them(project):
    """The checks at start cannot see the future: a failed write at the end is an error that
    names the file and fails the session, and the other output is still written."""
    project.mkdir("gone")
    project.makepyfile(test_zz_cleanup="import shutil\n\ndef test_zz_remove():\n    shutil.rmtree('gone')\n")
    result = project.runpytest(*TINY, "--gc-report=gone/r.json", "--gc-save-baseline=base.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["ERROR report gone/r.json: directory */gone does not exist",
                                 "baseline: 1 rows saved to base.json"])
    assert Baseline.load(str(project.path / "base.json")).entries


# --- 8 and 9. cudnn missing, two workers: every row reaches the report and the baseline ----------
def test_two_workers_write_every_row_once_and_cudnn_rows_say_why_they_skipped(project):
    before = _write_baseline(project.path / "base.json")
    result = project.runpytest_subprocess("-n", "2", "--gc-models=tiny,lenet",
                                          "--gc-converters=identity,relu_to_leaky", "--gc-device=both",
                                          "--gc-report=r.json", "--gc-save-baseline=base.json")
    result.assert_outcomes(passed=4, skipped=4)
    result.stdout.fnmatch_lines(["8 rows: 4 passed, 4 skipped", "report: 8 rows written to r.json",
                                 "baseline: 4 rows saved to base.json"])
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    assert sorted(r["id"] for r in rows) == sorted("{}-{}-{}".format(c, m, d) for c in ("identity", "relu_to_leaky")
                                                   for m in ("tiny", "lenet") for d in ("cpu", "cudnn"))
    for r in rows:
        if r["device"] == "cudnn":
            assert r["outcome"] == "skipped"
            assert r["message"].startswith("cudnn unavailable: nnabla_ext.cudnn is not installed")
    entries = Baseline.load(str(project.path / "base.json")).entries
    old = json.loads(before)["entries"]
    assert set(old) < set(entries) and len(entries) == len(old) + 4  # the other machine's row is kept
    assert {e["device"] for k, e in entries.items() if k not in old} == {"cpu"}
    assert [p for p in os.listdir(str(project.path)) if p.startswith(".gcverify-")] == []  # no temp files
