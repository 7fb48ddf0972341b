"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven through selenium) opens the page a session writes
(``--gc-html``) and the page the merge of two shard reports writes (``gcverify report
--html``), with a wrong conversion planted. The table has one row per matrix case and
sorts and filters; a failed row's and a passed row's detail views show both graph pictures
and the error plot (a quantizer's also its SQNR plot); the page loads nothing from anywhere.
Screenshots are kept in ``reports/browser/`` (or ``$GC_ARTIFACTS``).

Skipped, with the reason, where Chromium, its driver or selenium is missing; ``.ci/run``
installs them (``scripts/ci_system_packages.sh``).
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
ARTIFACTS = pathlib.Path(os.environ.get("GC_ARTIFACTS") or ROOT / "reports" / "browser")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")
MATRIX = ("--gc-models=tiny,lenet", "--gc-converters=identity,relu_to_leaky,qdq")
ROWS = 6  # 3 converters x 2 models x cpu


def _missing_browser():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[test])"
    for program, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if not shutil.which(program):
            return "{} is not on PATH (Debian: apt-get install -y chromium chromium-driver; " \
                   "package {})".format(program, package)
    return None


@pytest.fixture
def browser(tmp_path):
    reason = _missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + ("--user-data-dir={}".format(tmp_path / "chromium-profile"),):
        options.add_argument(flag)
    # an explicit driver path: selenium never tries to download one
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _open(browser, path):
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(path.as_uri())
    WebDriverWait(browser, 60).until(lambda b: b.find_element("tag name", "body").get_attribute("data-ready"))
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def _shown_rows(browser):
    return [tr for tr in browser.find_elements("css selector", "#matrix tbody tr") if tr.is_displayed()]


def _row(browser, case_id):
    return browser.find_element("css selector", '#matrix tbody tr[data-id="{}"]'.format(case_id))


def _check_table(browser):
    assert len(_shown_rows(browser)) == ROWS
    from selenium.webdriver.support.ui import Select
    outcome = Select(browser.find_element("id", "filter-outcome"))
    outcome.select_by_value("failed")
    assert sorted(tr.get_attribute("data-id") for tr in _shown_rows(browser)) == [
        "relu_to_leaky-lenet-cpu", "relu_to_leaky-tiny-cpu"]
    assert browser.find_element("id", "shown").text == "2 of {} rows".format(ROWS)
    outcome.select_by_value("")
    errors = browser.find_element("xpath", "//th[text()='max abs err']")

    def column():
        return [float(tr.find_elements("tag name", "td")[6].get_attribute("data-sort"))
                for tr in _shown_rows(browser)]
    errors.click()
    ascending = column()
    assert ascending == sorted(ascending) and ascending[0] == 0 < ascending[-1]  # as numbers
    errors.click()
    assert column() == ascending[::-1]


def _check_detail(browser, case_id, plots):
    """Open ``case_id``'s detail; its two graph pictures (or the note how to get them) and
    the plots named ``plots`` are shown."""
    _row(browser, case_id).click()
    detail = browser.find_element("id", "detail")
    assert detail.is_displayed()
    assert detail.find_element("tag name", "h2").text.startswith(case_id)
    graphs = detail.find_elements("css selector", "figure.graph")
    assert [g.get_attribute("data-graph") for g in graphs] == ["before", "after"]
    if shutil.which("dot"):
        pictures = [g.find_element("css selector", ".picture svg") for g in graphs]
        assert all(p.is_displayed() and p.size["height"] > 50 for p in pictures)
    else:  # the page must say how to get the pictures, and show the DOT text
        assert all("install Graphviz" in g.text and g.find_element("css selector", "pre.dot").is_displayed()
                   for g in graphs)
    shown = detail.find_elements("css selector", "figure.plot")
    assert [p.get_attribute("data-plot") for p in shown] == plots
    assert all(p.find_element("tag name", "svg").is_displayed() for p in shown)
    return detail


def _screenshot(browser, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / name))


def test_session_and_merged_reports_work_in_headless_chromium(project, browser, monkeypatch):
    from selenium.webdriver.common.keys import Keys
    monkeypatch.setenv("GC_PLANT", "wrong")  # relu_to_leaky scales a conv weight by 1.01
    project.runpytest(*MATRIX, "--gc-html=session.html").assert_outcomes(passed=4, failed=2)
    for k in (1, 2):
        project.runpytest(*MATRIX, "--gc-shard={}/2".format(k), "--gc-details=all",
                          "--gc-report=shard{}.json".format(k))
    merged = subprocess.run([sys.executable, "-m", "gcverify", "report", "shard1.json", "shard2.json",
                             "--html", "merged.html"], cwd=str(project.path), capture_output=True,
                            text=True, timeout=300)
    assert merged.returncode == 1, merged.stdout + merged.stderr  # the failed rows fail the gate

    for page in ("session", "merged"):
        _open(browser, project.path / "{}.html".format(page))
        _check_table(browser)
        _screenshot(browser, "{}-table.png".format(page))
        failed = _check_detail(browser, "relu_to_leaky-tiny-cpu", ["error"])
        assert "lie beyond the tolerance; the first is Convolution 'c2/conv'" in failed.text
        _screenshot(browser, "{}-failed-row.png".format(page))
        profile = failed.find_element("css selector", "section.profile")
        browser.execute_script("arguments[0].scrollIntoView()", profile)
        assert profile.screenshot(str(ARTIFACTS / "{}-failed-row-profile.png".format(page)))
        failed.find_element("css selector", ".close").click()  # the panel covers the table
        passed = _check_detail(browser, "qdq-lenet-cpu", ["error", "sqnr"])
        assert "The lowest SQNR is" in passed.text
        _screenshot(browser, "{}-quantizer-row.png".format(page))
        browser.find_element("tag name", "body").send_keys(Keys.ESCAPE)  # closes the detail
        assert not browser.find_element("id", "detail").is_displayed()


def test_a_link_to_a_row_opens_its_detail(project, browser):
    project.runpytest("--gc-models=tiny", "--gc-converters=identity,relu_to_leaky",
                      "--gc-html=r.html").assert_outcomes(passed=2)
    browser.get((project.path / "r.html").as_uri() + "#case=relu_to_leaky-tiny-cpu")
    detail = browser.find_element("id", "detail")
    assert detail.is_displayed() and "relu_to_leaky-tiny-cpu" in detail.find_element("tag name", "h2").text
    assert "All " in detail.text and "mapped intermediates lie within the tolerance" in detail.text
