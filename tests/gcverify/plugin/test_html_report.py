"""--gc-html and --gc-details in real pytest sessions: which rows carry graph pictures and the
error profile, the page the controller writes once (with and without xdist), and bad values."""
import json

import pytest

from gcverify.report.files import HTML_MARKER

CONVERTERS = "--gc-converters=identity,relu_to_leaky"


def _rows(project, name="r.json"):
    return {r["id"]: r for r in json.loads((project.path / name).read_text())["rows"]}


def test_by_default_only_failed_rows_carry_details(project, monkeypatch):
    monkeypatch.setenv("GC_PLANT", "wrong")
    project.runpytest("--gc-models=tiny", CONVERTERS, "--gc-report=r.json").assert_outcomes(passed=1, failed=1)
    rows = _rows(project)
    passed, failed = rows["identity-tiny-cpu"], rows["relu_to_leaky-tiny-cpu"]
    assert not {"dot_before", "dot_after", "error_profile"} & set(passed)  # the default stays as cheap
    assert failed["dot_before"].startswith("digraph") and "LeakyReLU" in failed["dot_after"]
    first = next(e for e in failed["error_profile"] if not e["within_tolerance"])
    assert first["function"] == "Convolution 'c2/conv'"
    assert passed["duration"] > 0 and failed["duration"] > 0


def test_details_all_puts_them_on_every_row(project):
    project.runpytest("--gc-models=tiny", CONVERTERS, "--gc-details=all",
                      "--gc-report=r.json").assert_outcomes(passed=2)
    assert all(len(r["error_profile"]) == 4 and r["dot_after"] for r in _rows(project).values())


def test_the_html_page_is_written_once_with_every_row_under_xdist(project, monkeypatch):
    monkeypatch.setenv("GC_PLANT", "wrong")
    result = project.runpytest_subprocess("-n", "2", "--gc-models=tiny,lenet", CONVERTERS,
                                          "--gc-html=out.html", "--gc-report=r.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["html: 4 rows written to out.html"])
    page = (project.path / "out.html").read_text()
    assert HTML_MARKER in page and page.count("<template id=") == 4
    assert page.count('<tr class="outcome-failed"') == 2
    assert all("error_profile" in r for r in _rows(project).values())  # --gc-html implies all


@pytest.mark.parametrize("options, message", [
    (["--gc-details=some"], "*gcverify: --gc-details takes failed or all, got 'some'*"),
    (["--gc-html=r.json", "--gc-report=r.json"],
     "*gcverify: --gc-html and --gc-report both name r.json; the HTML report would overwrite the report*"),
    (["--gc-html=mine.html"], "*gcverify: --gc-html mine.html: refusing to replace it (not a gcverify HTML report)*"),
    (["--gc-html=nodir/r.html"], "*gcverify: --gc-html nodir/r.html: directory * does not exist*"),
])
def test_bad_html_options_are_usage_errors_and_touch_nothing(project, options, message):
    (project.path / "mine.html").write_text("<html>my notes</html>")
    result = project.runpytest("--gc-models=tiny", CONVERTERS, *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert (project.path / "mine.html").read_text() == "<html>my notes</html>"


def test_the_plugin_imports_the_page_libraries_only_to_write_a_page():
    import subprocess
    import sys
    code = ("import sys, gcverify.plugin, gcverify.plugin.controller, gcverify.plugin.sharding, gcverify.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'matplotlib')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
