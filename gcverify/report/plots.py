"""Plots of a row's per-layer error profile (``Row.error_profile``) as SVG text, drawn with
matplotlib's SVG backend (no pyplot, no display): the relative error of every mapped
intermediate along the original graph, and for quantizers the per-layer SQNR.

matplotlib does what a hand-written chart would get wrong or spend code on: log axes with
readable ticks, legends, annotations that avoid the frame. Text stays text
(``svg.fonttype=none``: small files, searchable in the page) and the output is repeatable
(fixed hash salt, no date), so the same profile gives the same SVG. Imported only when an
HTML report is written.
"""
import io
import math

import matplotlib

matplotlib.use("svg", force=False)  # never a GUI backend, whatever the user's default
from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator  # noqa: E402

__all__ = ["error_profile_svg", "sqnr_svg"]

_RC = {"svg.fonttype": "none", "svg.hashsalt": "gcverify", "font.size": 8,
       "axes.spines.top": False, "axes.spines.right": False}
_WITHIN, _BEYOND, _EXACT = "#1f6fb4", "#c62828", "#2e7d32"


def _svg(fig):
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _figure():
    fig = Figure(figsize=(7.5, 2.6))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.2, top=0.86)
    return fig, fig.add_subplot()


def _annotate(ax, x, y, text, right_half):
    # name the point, its label towards the middle so that it stays inside the figure
    ax.annotate(text, (x, y), xytext=(-6 if right_half else 6, 8), textcoords="offset points",
                fontsize=7, ha="right" if right_half else "left",
                arrowprops=dict(arrowstyle="-", color="#666", lw=0.6))


def _right_half(entries, e):
    positions = [x["position"] for x in entries]
    return e["position"] > (min(positions) + max(positions)) / 2


def error_profile_svg(entries, title="per-layer error"):
    """The relative error (max |converted - original| / max |original|) of each mapped
    intermediate against its position in the original graph, log scale; exact zeros are
    drawn on a floor line below the smallest error; beyond-tolerance points in red, the
    worst one named."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure()
        nonzero = [e["relative_error"] for e in entries if e["relative_error"]]
        # exact zeros sit on the decade below the smallest error, labelled "0 (exact)"
        floor = 10.0 ** (math.floor(math.log10(min(nonzero))) - 1) if nonzero else 1e-9
        ceiling = max(nonzero) * 10 if nonzero else 1.0  # where NaN/inf errors are drawn

        def height(e):
            return ceiling if e["relative_error"] is None else (e["relative_error"] or floor)
        groups = (("within tolerance", _WITHIN, "o", lambda e: e["within_tolerance"] and e["relative_error"]),
                  ("beyond tolerance", _BEYOND, "x",
                   lambda e: not e["within_tolerance"] and e["relative_error"] is not None),
                  ("exact (0)", _EXACT, "s", lambda e: e["within_tolerance"] and e["relative_error"] == 0),
                  ("not finite", _BEYOND, "^", lambda e: e["relative_error"] is None))
        for label, color, marker, member in groups:
            chosen = [e for e in entries if member(e)]
            if chosen:
                ax.plot([e["position"] for e in chosen], [height(e) for e in chosen], ls="none",
                        marker=marker, ms=3.5, color=color, mfc=color if marker != "x" else None,
                        label="{} ({})".format(label, len(chosen)))
        ax.plot([e["position"] for e in entries], [height(e) for e in entries], color="#999",
                lw=0.5, zorder=0)  # a thin guide line along the graph
        ax.set_yscale("log")
        # plain labels at 1, 2, 5 x 10^k within two decades, at decades beyond: log minor
        # ticks and mathtext labels would cost 3/4 of the time
        heights = [height(e) for e in entries]
        decades = math.log10(max(heights) / min(heights)) if heights else 0.0
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2 else (1.0,), numticks=7))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda v, _: "0 (exact)" if math.isclose(v, floor) else "{:.0e}".format(v)))
        ax.axhline(floor, color=_EXACT, lw=0.5, ls=":", zorder=0)
        ax.set_ylim(bottom=floor / 1.3)  # nothing below "0 (exact)"
        if not nonzero:
            ax.set_yticks([floor])
            ax.set_ylim(floor / 1.3, floor * 1.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("position of the function in the original graph (topological order)")
        ax.set_ylabel("relative error")
        ax.set_title(title, fontsize=9, loc="left")
        if nonzero:
            worst = max((e for e in entries if e["relative_error"]), key=lambda e: e["relative_error"])
            _annotate(ax, worst["position"], worst["relative_error"], worst["function"],
                      _right_half(entries, worst))
        else:
            ax.text(0.5, 0.7, "all {} mapped intermediates equal the original's exactly".format(
                len(entries)), transform=ax.transAxes, ha="center", color=_EXACT)
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncol=3, bbox_to_anchor=(0, 1.02))
        return _svg(fig)


def sqnr_svg(entries, title="per-layer SQNR"):
    """Signal-to-quantization-noise ratio (dB) of each mapped intermediate along the graph,
    the lowest named; None when no intermediate has a finite SQNR (all exact)."""
    points = [e for e in entries if e.get("sqnr_db") is not None]
    if not points:
        return None
    with matplotlib.rc_context(_RC):
        fig, ax = _figure()
        ax.plot([e["position"] for e in points], [e["sqnr_db"] for e in points], color=_WITHIN,
                lw=0.8, marker="o", ms=2.5)
        lowest = min(points, key=lambda e: e["sqnr_db"])
        _annotate(ax, lowest["position"], lowest["sqnr_db"], "{} ({:.1f} dB)".format(
            lowest["function"], lowest["sqnr_db"]), _right_half(points, lowest))
        ax.set_xlabel("position of the function in the original graph (topological order)")
        ax.set_ylabel("SQNR (dB), higher is better")
        ax.set_title(title, fontsize=9, loc="left")
        return _svg(fig)
