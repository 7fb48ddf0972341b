"""The HTML report page without a browser: what it holds, that it needs nothing from outside,
how it degrades without Graphviz, the figures in words, the plots, and the file it writes
(atomically, replacing only a report of its own kind). The browser test is in
tests/gcverify/plugin/test_html_browser.py."""
import re
import shutil

import pytest

from gcverify.report.explain import explain, profile_summary
from gcverify.report.files import HTML_MARKER, ReportFileError, check_replaceable_text
from gcverify.report.html import inline_svg, render_html, write_html
from gcverify.report.plots import error_profile_svg, sqnr_svg

DOT = 'digraph "g" {\n  f0 [label="Convolution", style=filled, fillcolor="#f4b6b6"];\n  f1 [label="ReLU"];\n  f0 -> f1;\n}\n'
needs_graphviz = pytest.mark.skipif(not shutil.which("dot"), reason="graphviz (dot) is not installed")


def _entry(position, rel, within=True, name=None, sqnr=40.0):
    return dict(position=position, function=name or "Convolution #{}".format(position), type="Convolution",
                shape="2x4x8x8", max_abs_error=rel, scale=1.0, relative_error=rel, sqnr_db=sqnr,
                within_tolerance=within)


@pytest.fixture
def detailed(row):
    """A failed row with graphs and a profile whose third layer drifts, and a passed one."""
    failed = row("relu_to_leaky", outcome="failed", message="[numeric] outputs differ: <max abs 0.03>",
                 max_abs_error=0.03, dot_before=DOT, dot_after=DOT.replace("ReLU", "LeakyReLU"),
                 error_profile=[_entry(0, 0.0, sqnr=None), _entry(1, 1e-7), _entry(2, 0.01, False, "Conv 'c2'"),
                                _entry(3, 0.02, False)])
    quantizer = row("qdq", tolerance_preset="quantizer", dot_before=DOT, dot_after=DOT,
                    error_profile=[_entry(0, 0.01, sqnr=35.0), _entry(1, 0.02, sqnr=28.5, name="ReLU #1")])
    return [failed, quantizer, row("identity")]


def _details(page):
    return re.findall(r'<template id="detail-(\d+)">(.*?)</template>', page, re.S)


def test_the_page_holds_one_table_row_and_one_detail_per_row(detailed):
    page = render_html(detailed, title="t")
    assert HTML_MARKER in page[:1000]
    assert len(re.findall(r"<tr class=\"outcome-", page)) == 3
    assert [i for i, _ in _details(page)] == ["0", "1", "2"]
    for name in ("outcome", "converter", "model", "device"):
        assert 'id="filter-{}"'.format(name) in page
    assert '<option value="failed">failed</option>' in page


def test_numbers_sort_as_numbers_even_when_infinite(row):
    page = render_html([row("qdq", max_rel_error=float("inf")), row("identity", max_rel_error=None)])
    assert '<td data-sort="Infinity">inf</td>' in page  # JavaScript's Number() reads it back
    assert '<td data-sort="">-</td>' in page  # empty: sorted last either way


def test_the_page_loads_nothing_from_outside(detailed):
    page = render_html(detailed)
    assert not re.search(r"<link\b|<script\b[^>]*\bsrc=|<img\b|@import|url\((?!#)", page)
    assert not re.search(r"""(?:src|href)=["'](?!#)""", page)
    assert "<!DOCTYPE svg" not in page and "<?xml" not in page


def test_text_from_rows_is_escaped(detailed):
    page = render_html(detailed)
    assert "&lt;max abs 0.03&gt;" in page and "<max abs 0.03>" not in page


@needs_graphviz
def test_graphs_are_pictures_and_the_plots_are_there(detailed):
    details = dict(_details(render_html(detailed)))
    failed, quantizer, plain = details["0"], details["1"], details["2"]
    assert failed.count('<figure class="graph"') == 2 and failed.count("<svg") == 3  # 2 graphs, 1 plot
    assert 'data-plot="error"' in failed and 'data-plot="sqnr"' not in failed
    assert 'data-plot="sqnr"' in quantizer  # a quantizer: the SQNR plot too
    assert "#f4b6b6" in failed  # the highlighted function keeps its colour in the picture
    assert "No graph pictures: not recorded in this run" in plain and "<svg" not in plain


def test_without_graphviz_the_page_says_how_to_get_pictures_and_shows_the_dot(detailed, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    page = render_html(detailed)
    failed = dict(_details(page))["0"]
    assert 'id="graphviz-missing"' in page and "apt-get install graphviz" in page
    assert failed.count("install Graphviz to see pictures") == 2
    assert failed.count('<pre class="dot">') == 2 and "LeakyReLU" in failed
    assert 'data-plot="error"' in failed  # plots need no graphviz


def test_inlined_svgs_never_share_ids():
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://x">'
           '<svg><defs><path id="m1"/></defs><use xlink:href="#m1"/><g clip-path="url(#c1)"/>'
           '<clipPath id="c1"/></svg>')
    out = inline_svg(svg, "r3e")
    assert out.startswith("<svg>") and 'id="r3e-m1"' in out and 'href="#r3e-m1"' in out
    assert "url(#r3e-c1)" in out and 'id="r3e-c1"' in out and "DOCTYPE" not in out


def test_the_figures_in_words(row):
    failed = row("bn_fold", outcome="failed", message="[numeric] outputs differ", max_abs_error=0.03,
                 error_scale=3.0, normalized_error=0.01, max_rel_error=0.5, mismatches=7, elements=40,
                 tolerance="rtol=0.0001", needed_atol=0.01, needed_rtol=0.5, speed_ratio=1.2,
                 speed_judged=False, time_original=0.002, time_converted=0.0017)
    text = " ".join(explain(failed))
    assert text.startswith("Failed: [numeric] outputs differ")
    assert "by at most 0.03 where the largest output magnitude is 3: 0.01 of the output scale" in text
    assert "7 of 40 elements lie beyond it" in text and "atol >= 0.01 x max|y|, or rtol >= 0.5" in text
    assert "12 functions before the conversion, 9 after: removed 3 BatchNormalization." in text
    assert "1.20x as fast as the original (not judged" in text
    exact = " ".join(explain(row("identity", max_abs_error=0.0, removed={}, functions_after=12)))
    assert "bit-for-bit equal" in exact and "12 functions before the conversion, 12 after, same types" in exact


def test_the_profile_in_words(detailed):
    failed, quantizer, plain = detailed
    text = " ".join(profile_summary(failed))
    assert "2 of 4 mapped intermediates lie beyond the tolerance; the first is Conv 'c2' at position 2" in text
    assert "The largest relative error, 0.02, is at Convolution #3" in text
    assert "The lowest SQNR is 28.5 dB at ReLU #1 (position 1)" in " ".join(profile_summary(quantizer))
    assert profile_summary(plain) == []


def test_plots_are_repeatable_svg_and_say_when_everything_is_exact():
    entries = [_entry(i, 10.0 ** -(i + 3), i != 2) for i in range(5)]
    first = error_profile_svg(entries)
    assert first == error_profile_svg(entries) and first.lstrip().startswith("<?xml")
    assert "beyond tolerance (1)" in first and "within tolerance (4)" in first
    exact = error_profile_svg([_entry(i, 0.0, sqnr=None) for i in range(3)])
    assert "all 3 mapped intermediates equal the original" in exact
    assert sqnr_svg([_entry(0, 0.0, sqnr=None)]) is None
    assert "dB" in sqnr_svg(entries)


def test_the_file_is_written_atomically_and_replaces_only_a_report(tmp_path, detailed, monkeypatch):
    path = tmp_path / "r.html"
    write_html(str(path), detailed)
    assert path.read_text().count("<template id=") == 3
    check_replaceable_text(str(path), HTML_MARKER, "HTML report", "--gc-html")  # ours: fine
    import gcverify.report.files as files

    def disk_full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "replace", disk_full)  # fails after the page was written out
    with pytest.raises(ReportFileError, match="cannot write HTML report .*r.html: .*No space left"):
        write_html(str(path), detailed[:1])
    monkeypatch.undo()
    assert path.read_text().count("<template id=") == 3 and not list(tmp_path.glob(".gcverify-*"))
    other = tmp_path / "notes.html"
    other.write_text("<html>my own page</html>")
    with pytest.raises(ReportFileError, match="--gc-html .*notes.html: refusing to replace it"):
        check_replaceable_text(str(other), HTML_MARKER, "HTML report", "--gc-html")
