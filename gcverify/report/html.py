"""The HTML report (``--gc-html=PATH``, ``gcverify report ... --html PATH``): one
self-contained file, opened without any network access.

The matrix is a table that sorts by any column and filters by outcome, converter, model,
device and free text; selecting a row shows its detail: the verdict and the figures in
words (:mod:`.explain`), the graphs before and after the conversion as pictures with the
changed functions highlighted (Graphviz, :mod:`.graphs`; without it the page says how to
install it and shows the DOT text), the per-layer error profile and, for quantizers, the
per-layer SQNR (:mod:`.plots`), and the message. Everything is inline: CSS, JavaScript
and SVG; each detail sits in an inert ``<template>`` until it is opened, so a large matrix
loads fast. The template is Jinja2 (``templates/``, autoescaped).

Graph pictures are rendered here, where the report is written (a shard's runner needs no
Graphviz): each distinct DOT text once, several ``dot`` processes at a time.
"""
import concurrent.futures
import datetime
import math
import os
import re

import jinja2
from markupsafe import Markup

from .explain import explain, profile_summary
from .files import HTML_MARKER, write_text_atomic
from .graphs import render_svg
from .table import changes, counts, speed

__all__ = ["render_html", "write_html", "inline_svg", "TEMPLATES"]

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
WORST_SHOWN = 8  # layers listed under the plots


def inline_svg(svg, prefix):
    """``svg`` ready to sit inside HTML beside others: no XML prolog or DOCTYPE (which would
    name a DTD on the network), every ``id`` and reference to it prefixed with ``prefix``
    so two pictures in one page never share an id."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", "", svg).strip()
    svg = re.sub(r'\bid="([^"]+)"', lambda m: 'id="{}-{}"'.format(prefix, m.group(1)), svg)
    svg = re.sub(r'(href=")#([^"]+)"', lambda m: '{}#{}-{}"'.format(m.group(1), prefix, m.group(2)), svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: "url(#{}-{})".format(prefix, m.group(1)), svg)
    return Markup(svg)


def _render_all(dots):
    """{dot text: (svg or None, note)} for the distinct texts in ``dots``."""
    distinct = sorted(set(d for d in dots if d))
    if not distinct:
        return {}
    workers = max(1, min(len(distinct), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # dot runs as a subprocess
        return dict(zip(distinct, pool.map(render_svg, distinct)))


def _num(x, fmt="{:.3g}"):
    """(text, sort key) of a number; the key is what JavaScript's Number() reads back."""
    if x is None or math.isnan(x):
        return ("-", "")
    return fmt.format(x), ("Infinity" if x > 0 else "-Infinity") if math.isinf(x) else repr(float(x))


def _cells(r, problems):
    """(shown text, sort key) per column; an empty key sorts last."""
    fb, fa = r.functions_before, r.functions_after
    changed = changes(r, limit=None)
    outcome = (r.outcome or "?") + (" (regressed)" if problems else "")
    return [(r.converter or "-", r.converter or ""), (r.model or "-", r.model or ""),
            (r.device_label or r.device or "-", r.device or ""), (outcome, outcome),
            ("-" if fb is None else "{} -> {}".format(fb, "?" if fa is None else fa),
             "" if fb is None else repr(float(fb))),
            (changed, "" if changed == "-" else changed),
            _num(r.max_abs_error), _num(r.max_rel_error),
            (r.tolerance_preset or r.tolerance or "-", r.tolerance_preset or r.tolerance or ""),
            _num(None if r.conversion_time is None else r.conversion_time * 1000, "{:.1f}"),
            (speed(r), _num(r.speed_ratio)[1]), (r.message or "-", r.message or "")]


COLUMNS = (("converter", "text"), ("model", "text"), ("device", "text"), ("outcome", "text"),
           ("functions", "num"), ("changed", "text"), ("max abs err", "num"),
           ("max rel err", "num"), ("tolerance", "text"), ("convert ms", "num"),
           ("speed", "num"), ("note", "text"))
FILTERS = (("outcome", 3), ("converter", 0), ("model", 1), ("device", 2))


def _why_no_graphs(r):
    if r.outcome == "skipped":
        return "the case was skipped, so no graph was built"
    if r.outcome == "crashed":
        return "the process running the case crashed (see the message)"
    if r.functions_after is None:
        return "the conversion produced no graph (see the message)"
    if r.profile_note and r.profile_note.startswith("no graph pictures"):
        return r.profile_note
    return ("not recorded in this run: details are kept for failed rows, and for every row "
            "with --gc-details=all (implied by --gc-html)")


def _graphs(i, r, pictures):
    graphs = []
    for which, dot in (("before", r.dot_before), ("after", r.dot_after)):
        if dot:
            svg, note = pictures[dot]
            graphs.append(dict(which=which, dot=dot, note=note,
                               svg=inline_svg(svg, "r{}{}".format(i, which[0])) if svg else None))
    return graphs


def _plots(i, r):
    if not r.error_profile:
        return []
    from .plots import error_profile_svg, sqnr_svg  # matplotlib: only when there is a profile
    plots = [dict(which="error", svg=inline_svg(error_profile_svg(
        r.error_profile, "per-layer relative error along the original graph"), "r{}e".format(i)))]
    if r.quantizer:
        svg = sqnr_svg(r.error_profile, "per-layer SQNR (quantization noise) along the original graph")
        if svg:
            plots.append(dict(which="sqnr", svg=inline_svg(svg, "r{}q".format(i))))
    return plots


def _worst(r):
    ranked = sorted((e for e in r.error_profile or () if e["relative_error"] != 0),
                    key=lambda e: -(e["relative_error"] if e["relative_error"] is not None else float("inf")))
    return ranked[:WORST_SHOWN]


def _row_view(i, r, pictures, problems):
    return dict(index=i, id=r.id, outcome=r.outcome or "unknown", cells=_cells(r, problems),
                words=explain(r), problems=problems, graphs=_graphs(i, r, pictures),
                why_no_graphs=_why_no_graphs(r), plots=_plots(i, r),
                profile_words=profile_summary(r), worst=_worst(r), message=r.message,
                quantizer=r.quantizer)


def _asset(name):
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as f:
        return Markup(f.read())  # our own CSS/JS, inlined as is (not parsed as a template)


def render_html(rows, title="gcverify report", notes=(), row_problems=None, sources=()):
    """The report page (text) for ``rows`` (Row objects). ``notes``: lines shown at the top
    (missing shards, regressions, warnings); ``row_problems``: ``{row id: [problem, ...]}``
    shown with those rows; ``sources``: where the rows came from (report files)."""
    row_problems = row_problems or {}
    pictures = _render_all([d for r in rows for d in (r.dot_before, r.dot_after)])
    views = [_row_view(i, r, pictures, row_problems.get(r.id, [])) for i, r in enumerate(rows)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    choices = {name: sorted({v["cells"][col][1] for v in views if v["cells"][col][1]})
               for name, col in FILTERS}
    machines = sorted({r.machine for r in rows if r.machine})
    return env.get_template("report.html.j2").render(
        title=title, marker=Markup(HTML_MARKER), css=_asset("report.css"), js=_asset("report.js"),
        rows=views, columns=COLUMNS, filters=FILTERS,
        choices=choices, summary=counts(rows), notes=list(notes), sources=list(sources),
        machines=machines, nnabla=sorted({r.nnabla for r in rows if r.nnabla}),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        missing_pictures=any(g["svg"] is None for v in views for g in v["graphs"]),
        no_graphviz_note=next((g["note"] for v in views for g in v["graphs"] if g["note"]), ""))


def write_html(path, rows, **kwargs):
    """Render the report (see :func:`render_html`) and write it to ``path`` atomically."""
    write_text_atomic(path, render_html(rows, **kwargs), "HTML report")
