"""Pictures of graphs before and after a conversion (``--gc-graphs=DIR``), as seed 003 shows.

Writes Graphviz DOT: one box per function (type, parameter scope, output shape, and
``channel_last`` where set), one edge per variable between functions, graph inputs and
outputs as ellipses. Renders SVG too when the ``dot`` program is installed.
"""
import os
import re
import shutil
import subprocess

from converters.graph_view import GraphView

__all__ = ["to_dot", "write_graph"]


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(outputs, params=None, title="graph"):
    view = GraphView(outputs, params or {})
    node = {f: "f{}".format(i) for i, f in enumerate(view.functions)}
    lines = ["digraph {} {{".format(_quote(title)), "  rankdir=TB;",
             "  node [shape=box, fontsize=10];"]
    for i, x in enumerate(view.inputs):
        lines.append('  in{} [shape=ellipse, label={}];'.format(i, _quote("input {}\n{}".format(i, x.shape))))
    inputs = {x: "in{}".format(i) for i, x in enumerate(view.inputs)}
    for f in view.functions:
        label = view.describe(f) + "\n" + "x".join(map(str, f.outputs[0].shape))
        if f.info.args.get("channel_last"):
            label += "\nchannel_last"
        lines.append("  {} [label={}];".format(node[f], _quote(label)))
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


def write_graph(outputs, params, directory, name):
    """Write ``directory/name.dot`` (and ``.svg`` with graphviz); returns the paths written."""
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, re.sub(r"[^\w.-]+", "_", name))
    with open(stem + ".dot", "w") as f:
        f.write(to_dot(outputs, params, name))
    written = [stem + ".dot"]
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg", stem + ".dot", "-o", stem + ".svg"],
                              capture_output=True, timeout=120)
        if done.returncode == 0:
            written.append(stem + ".svg")
    return written
