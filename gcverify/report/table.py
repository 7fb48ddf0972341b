"""The matrix as text: one line per row (the summary printed at the end of a session and by
``python -m gcverify report``)."""
from tabulate import tabulate

__all__ = ["table", "counts", "short", "changes", "speed", "vacuous"]


def short(text, width=60):
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _num(x, fmt="{:.2g}"):
    return "-" if x is None else fmt.format(x)


def speed(row):
    """The speed ratio as text; in parentheses when the graphs ran too fast to judge it."""
    text = _num(row.speed_ratio, "{:.2f}x")
    # a ratio of a graph too fast to judge is shown in parentheses
    return "({})".format(text) if row.speed_judged is False else text


def changes(row, limit=2):
    """What the conversion removed and added (``-3 BatchNormalization, +1 Transpose``), the
    first ``limit`` kinds (None: all); ``-`` for nothing."""
    parts = ["-{} {}".format(v, k) for k, v in sorted((row.removed or {}).items())]
    parts += ["+{} {}".format(v, k) for k, v in sorted((row.added or {}).items())]
    if limit is not None and len(parts) > limit:
        parts = parts[:limit] + ["({} more)".format(len(parts) - limit)]
    return ", ".join(parts) or "-"


def _saved_note(row):
    """Why a row's saved check did not run or could not save (nothing when it passed)."""
    saved = row.saved or ""
    return "saved: " + saved if saved.startswith(("skipped", "unsaveable")) else ""


def table(rows, tablefmt="simple"):
    """The matrix as text: one line per row, the diagnosis cut to fit."""
    body = []
    for r in rows:
        fb, fa = r.functions_before, r.functions_after
        body.append((
            r.converter, r.model, r.device, (r.outcome or "?"),
            "-" if fb is None else "{} -> {}".format(fb, "?" if fa is None else fa),
            short(changes(r), 34),
            "-" if r.max_abs_error is None else "{} / {}".format(
                _num(r.max_abs_error), _num(r.max_rel_error)),
            r.tolerance_preset or r.tolerance or "-",
            _num(r.conversion_time, "{:.3f}"),
            speed(r),
            short(r.message or _saved_note(r), 56) or "-",
        ))
    return tabulate(body, ["converter", "model", "device", "outcome", "functions", "changed",
                           "max abs / rel err", "tolerance", "convert s", "speed", "note"],
                    tablefmt=tablefmt)


def counts(rows):
    c = {}
    for r in rows:
        c[r.outcome or "?"] = c.get(r.outcome or "?", 0) + 1
    return ", ".join("{} {}".format(v, k) for k, v in sorted(c.items()))


def vacuous(rows, idle_by_design=()):
    """A line for each converter that changed nothing on any model of the session: every row
    of it that got as far as converting has ``functions_changed == 0`` and nothing added. Such
    a row passes whatever its converter does (a planted bug cannot show), so the session says
    so. ``idle_by_design``: converters whose rules promise an unchanged graph (identity)."""
    by_converter = {}
    for r in rows:
        if r.functions_changed is not None and r.converter not in idle_by_design:
            by_converter.setdefault(r.converter, []).append(r)
    lines = []
    for name, mine in by_converter.items():
        if all(r.functions_changed == 0 and not r.functions_added for r in mine):
            models = sorted({r.model for r in mine})
            lines.append("vacuous: {} changed nothing on any of the {} model{} ({}): its rows prove nothing".format(
                name, len(models), "" if len(models) == 1 else "s", short(", ".join(models), 60)))
    return lines
