"""Pictures of graphs before and after a conversion (``--gc-graphs=DIR``, the HTML report),
as seed 003 shows.

Writes Graphviz DOT: one box per function (type, parameter scope, output shape, and
``channel_last`` where set), one edge per variable between functions, graph inputs and
outputs as ellipses; functions a conversion changed can be filled in a colour, with a
caption saying what the colour means. Renders SVG when the ``dot`` program is installed
(Debian: ``apt-get install graphviz``); without it :func:`render_svg` says so and the DOT
text is all there is.
"""
import os
import re
import shutil
import subprocess

__all__ = ["to_dot", "write_graph", "render_svg", "dot_program", "NO_GRAPHVIZ"]

NO_GRAPHVIZ = ("install Graphviz to see pictures (Debian/Ubuntu: apt-get install graphviz; "
               "macOS: brew install graphviz); the DOT text is below")


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(outputs, params=None, title="graph", marked=(), color="#f4b6b6", caption=None):
    """DOT text of the graph computing ``outputs``; functions in ``marked`` are filled with
    ``color`` and ``caption`` (e.g. what the colour means) is shown above the graph."""
    from converters.graph_view import GraphView  # nnabla: not for rendering saved DOT text
    view = GraphView(outputs, params or {})
    node = {f: "f{}".format(i) for i, f in enumerate(view.functions)}
    marked = set(marked)
    lines = ["digraph {} {{".format(_quote(title)), "  rankdir=TB;",
             "  node [shape=box, fontsize=10];"]
    if caption:
        lines.append("  labelloc=t; labeljust=l; fontsize=11; label={};".format(_quote(caption)))
    for i, x in enumerate(view.inputs):
        lines.append('  in{} [shape=ellipse, label={}];'.format(i, _quote("input {}\n{}".format(i, x.shape))))
    inputs = {x: "in{}".format(i) for i, x in enumerate(view.inputs)}
    for f in view.functions:
        label = view.describe(f) + "\n" + "x".join(map(str, f.outputs[0].shape))
        if f.info.args.get("channel_last"):
            label += "\nchannel_last"
        fill = ', style=filled, fillcolor="{}"'.format(color) if f in marked else ""
        lines.append("  {} [label={}{}];".format(node[f], _quote(label), fill))
        for v in f.inputs:
            source = node.get(v.parent) if v.parent is not None else inputs.get(v)
            if source:
                lines.append("  {} -> {};".format(source, node[f]))
    for i, o in enumerate(view.outputs):
        lines.append('  out{} [shape=ellipse, label={}];'.format(i, _quote("output {}".format(i))))
        source = node.get(o.parent) if o.parent is not None else inputs.get(o)
        if source:
            lines.append("  {} -> out{};".format(source, i))
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program():
    """The path of Graphviz's ``dot``, or None where it is not installed."""
    return shutil.which("dot")


def render_svg(dot_text, timeout=120):
    """``(svg text, None)`` rendered by Graphviz, or ``(None, why not)``."""
    program = dot_program()
    if not program:
        return None, NO_GRAPHVIZ
    try:
        done = subprocess.run([program, "-Tsvg"], input=dot_text.encode(), capture_output=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "graphviz failed: {}".format(e)
    if done.returncode != 0:
        return None, "graphviz failed: {}".format(done.stderr.decode(errors="replace").strip()[:300])
    return done.stdout.decode(errors="replace"), None


def write_graph(outputs, params, directory, name):
    """Write ``directory/name.dot`` (and ``.svg`` with graphviz); returns the paths written."""
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, re.sub(r"[^\w.-]+", "_", name))
    text = to_dot(outputs, params, name)
    with open(stem + ".dot", "w") as f:
        f.write(text)
    written = [stem + ".dot"]
    svg, _ = render_svg(text)
    if svg is not None:
        with open(stem + ".svg", "w") as f:
            f.write(svg)
        written.append(stem + ".svg")
    return written
