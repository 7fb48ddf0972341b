"""Save a baseline, compare with it: unchanged passes, planted regressions fail."""
import json

import pytest

ARGS = ("--gc-models=tiny,lenet", "--gc-converters=identity,relu_to_leaky")


@pytest.fixture
def project(project):
    """The downstream project (tests/conftest.py) with a baseline saved from a clean run."""
    project.runpytest(*ARGS, "--gc-save-baseline=base.json").assert_outcomes(passed=4)
    return project


def test_saved_baseline_holds_every_row(project):
    doc = json.loads((project.path / "base.json").read_text())
    assert doc["format"] == "gcverify-baseline" and len(doc["entries"]) == 4
    entry = next(e for k, e in doc["entries"].items() if k.startswith("relu_to_leaky-tiny-cpu"))
    assert entry["histogram_after"]["LeakyReLU"] == 1 and entry["output_checksum"]


def test_compare_with_an_unchanged_run_passes(project):
    result = project.runpytest(*ARGS, "--gc-baseline=base.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*compared with baseline base.json*"])


@pytest.mark.parametrize("plant, problem", [
    ("layers", "*regression against base.json: layer counts after conversion changed: Identity 0->1*"),
    ("error", "*regression against base.json: error grew 0x -> *x the noise floor (floor *; limit 2.5x the "
              "baseline's multiple*"),
])
def test_planted_regression_fails_its_rows(project, monkeypatch, plant, problem):
    monkeypatch.setenv("GC_PLANT", plant)
    result = project.runpytest(*ARGS, "--gc-baseline=base.json")
    result.assert_outcomes(passed=2, failed=2)  # identity rows unaffected
    result.stdout.fnmatch_lines([problem])


def test_a_planted_error_under_a_fixed_tolerance_is_seen_by_the_noise_floor_and_the_baseline(project, monkeypatch):
    monkeypatch.setenv("GC_PLANT", "error")  # every weight of the second conv 2e-5 off
    result = project.runpytest(*ARGS)
    result.assert_outcomes(passed=2, failed=2)  # far above each model's float32 noise floor
    result.stdout.fnmatch_lines(["*[[]numeric] outputs differ: *error = *x the noise floor; tolerance <= 4x noise floor*"])
    fixed = project.runpytest(*ARGS, "--gc-tolerance=float32-fixed")
    fixed.assert_outcomes(passed=4)  # under the fixed 1e-4 of earlier versions it hides...
    caught = project.runpytest(*ARGS, "--gc-tolerance=float32-fixed", "--gc-baseline=base.json")
    caught.assert_outcomes(passed=2, failed=2)  # ...and only a baseline could see it


LENET = ("--gc-models=lenet", "--gc-converters=relu_to_leaky")


def test_an_error_grown_3x_against_the_noise_floor_fails_within_the_tolerance(project, monkeypatch):
    """Weights 1e-6 off: 0.8x LeNet's floor when saved; 4e-6 off: 2.9x, still within the
    4x tolerance, 3.6x the saved multiple (and under 4x the raw error: the old rule missed it)."""
    monkeypatch.setenv("GC_PLANT", "scale:1e-6")
    project.runpytest(*LENET, "--gc-save-baseline=near.json").assert_outcomes(passed=1)
    monkeypatch.setenv("GC_PLANT", "scale:4e-6")
    result = project.runpytest(*LENET, "--gc-baseline=near.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*regression against near.json: error grew 0.8x -> 2.92x the noise floor*"])
    assert "outputs differ" not in result.stdout.str()  # the numeric check itself passed


def test_a_floor_that_changed_with_the_error_is_no_regression(project, monkeypatch):
    """The baseline as another NNabla would have saved it: floor and error 10x larger, the
    same multiple. Compared raw, the error "shrank"; as multiples, nothing changed."""
    monkeypatch.setenv("GC_PLANT", "scale:1e-6")
    project.runpytest(*LENET, "--gc-save-baseline=near.json").assert_outcomes(passed=1)
    path = project.path / "near.json"
    doc = json.loads(path.read_text())
    for entry in doc["entries"].values():
        assert entry["noise_floor"] and entry["noise_multiple"] == pytest.approx(0.8)
        for k in ("noise_floor", "normalized_error", "rms_error", "max_abs_error"):
            entry[k] *= 10
    path.write_text(json.dumps(doc))
    project.runpytest(*LENET, "--gc-baseline=near.json", "--gc-report=r.json").assert_outcomes(passed=1)
    row = json.loads((project.path / "r.json").read_text())["rows"][0]
    assert "errors compared as multiples of it" in row["baseline"]


def test_a_version_2_baseline_still_compares(project):
    """A file saved before baselines kept the floor: its entries load and compare raw."""
    doc = json.loads((project.path / "base.json").read_text())
    assert doc["version"] == 3
    doc["version"] = 2
    for entry in doc["entries"].values():
        del entry["noise_floor"], entry["noise_multiple"]
    (project.path / "old.json").write_text(json.dumps(doc))
    result = project.runpytest(*ARGS, "--gc-baseline=old.json", "--gc-report=r.json")
    result.assert_outcomes(passed=4)
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    floored = [r for r in rows if r.get("noise_multiple") is not None]  # identity rows are exact
    assert floored and all("errors compared raw" in r["baseline"] for r in floored)


@pytest.mark.parametrize("content, message", [
    (None, "*gcverify: --gc-baseline: no baseline file at missing.json (create one with --gc-save-baseline=missing.json)*"),
    ('{"format": "gcverify-baseline", "version": 1, "entries": {"x', "*gcverify: --gc-baseline: baseline missing.json is corrupt or truncated*"),
    ('{"format": "gcverify-report", "version": 1, "rows": []}', "*gcverify: --gc-baseline: missing.json is not a gcverify baseline*"),
])
def test_bad_baseline_is_a_usage_error_naming_the_file(project, content, message):
    if content is not None:
        (project.path / "missing.json").write_text(content)
    result = project.runpytest(*ARGS, "--gc-baseline=missing.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_xdist_run_saves_the_baseline_once_with_every_row(project):
    result = project.runpytest_subprocess("-n", "2", *ARGS, "--gc-save-baseline=base2.json")
    result.assert_outcomes(passed=4)
    doc = json.loads((project.path / "base2.json").read_text())
    assert len(doc["entries"]) == 4
    project.runpytest_subprocess("-n", "2", *ARGS, "--gc-baseline=base2.json").assert_outcomes(passed=4)
