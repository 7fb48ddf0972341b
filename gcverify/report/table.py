"""The matrix as text: one line per row (the summary printed at the end of a session and by
``python -m gcverify report``), and the lines a cell cannot hold (:func:`details`).

What each column means is explained in the README ("Reading the table").
"""
import re

from tabulate import tabulate

__all__ = ["table", "details", "counts", "short", "changes", "speed", "error", "vacuous", "NOTE_WIDTH"]

NOTE_WIDTH = 56


def short(text, width=60):
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _num(x, fmt="{:.2g}"):
    return "-" if x is None else fmt.format(x)


_VERDICT_MARK = {"met": "", "missed": " slower", "inconclusive": " ?"}


def speed(row):
    """The speed ratio as text: in parentheses when the graphs ran too fast to judge it,
    ``?`` after it when inconclusive, ``slower`` when confidently missed."""
    text = _num(row.speed_ratio, "{:.2f}x")
    if row.speed_judged is False:
        return "({})".format(text)
    return text + _VERDICT_MARK.get(row.speed_verdict or "met", "")


def error(row):
    """The largest error: as a multiple of the float32 noise floor where the row was judged
    against one (``2.1e-06 (0.3x floor)``), else absolute / relative."""
    if row.max_abs_error is None:
        return "-"
    if row.noise_multiple is not None:
        return "{} ({:.2g}x floor)".format(_num(row.max_abs_error), row.noise_multiple)
    return "{} / {}".format(_num(row.max_abs_error), _num(row.max_rel_error))


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


def _quantizer_note(row):
    parts = ["SQNR {:.1f} dB".format(row.sqnr_db)] if row.sqnr_db is not None else []
    parts += ["top-1 {:.0%}".format(row.top1_agreement)] if row.top1_agreement is not None else []
    return ", ".join(parts)


def note(row):
    """The row's note, uncut: its diagnosis, else what a reader of a passed row should know."""
    return " ".join(str(row.message or _saved_note(row) or _quantizer_note(row) or "").split())


def table(rows, tablefmt="simple"):
    """The matrix as text: one line per row, the diagnosis cut to fit."""
    body = []
    for r in rows:
        fb, fa = r.functions_before, r.functions_after
        body.append((
            r.converter, r.model, r.device, (r.outcome or "?"),
            "-" if fb is None else "{} -> {}".format(fb, "?" if fa is None else fa),
            short(changes(r), 34),
            error(r),
            r.tolerance_preset or r.tolerance or "-",
            _num(r.conversion_time, "{:.3f}"),
            speed(r),
            short(note(r), NOTE_WIDTH) or "-",
        ))
    return tabulate(body, ["converter", "model", "device", "outcome", "functions", "changed",
                           "max error", "tolerance", "convert s", "speed", "note"],
                    tablefmt=tablefmt)


def _note_shape(text):
    """A note with its quoted names and its numbers masked: notes of one shape say one thing."""
    return re.sub(r"'[^']*'|\d[\d.]*(e[+-]?\d+)?", "#", text)


def _notes(rows):
    """One line per long note; the rows of one converter and device whose notes say the same
    thing up to names and numbers (a recorder no .nnp can hold, on every model) share one."""
    groups = {}
    for r in rows:
        text = note(r)
        if len(text) > NOTE_WIDTH:
            groups.setdefault((r.converter, r.device, _note_shape(text)), []).append((r, text))
    lines = []
    for (converter, device, _), members in groups.items():
        first, text = members[0]
        if len(members) == 1:
            lines.append("note  {}: {}".format(first.id, text))
        else:
            models = ", ".join(r.model for r, _ in members)
            lines.append("note  {} on {} {} models ({}): {}{}".format(
                converter, device, len(members), short(models, 60), text,
                "" if all(t == text for _, t in members) else " (on {}; names and numbers vary)".format(first.model)))
    return lines


def details(rows):
    """The lines the table's cells cut: each note longer than its cell (one line for a
    converter's notes that say the same on several models), each judged speed ratio with its
    interval and rounds, each function a converter kept and why. Not for expected failures
    (NNabla's peers, xfailed): their diagnoses are in the report files."""
    rows = [r for r in rows if r.outcome != "xfailed"]
    lines = _notes(rows)
    for r in rows:
        if r.speed_judged and r.speed_low is not None:
            level = " {:.6g}%".format(100 * r.speed_confidence) if r.speed_confidence else ""
            lines.append("speed {}: {:.2f}x,{} interval [{:.2f}, {:.2f}] over {} paired rounds: {}".format(
                r.id, r.speed_ratio, level, r.speed_low, r.speed_high, r.speed_rounds, r.speed_verdict))
        lines += ["kept  {}: {}".format(r.id, k) for k in r.kept or ()]
    return lines


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
