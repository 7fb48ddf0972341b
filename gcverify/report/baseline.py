"""Regression baselines: what each row measured once, and what counts as getting worse.

An entry (keyed by row id and machine) keeps the function histograms, the error figures
(with the float32 noise floor they were measured against and the error as a multiple of
it), a checksum of the converted outputs, the timings, and where it ran (machine, nnabla,
device). Comparing a new row with its entry fails it when

- its function histogram before or after the conversion changed (layer counts),
- its error grew: for a row judged against the model's noise floor, when both the entry and
  the row have one, as a multiple of the floor each was measured with: the new
  ``error / floor`` beyond ``multiple_factor`` times the baseline's ``error / floor``
  (multiples below ``multiple_floor``, float32 rounding, count as that floor); otherwise (a
  fixed tolerance, a quantizer, or an entry saved before baselines kept the floor) the raw
  errors: beyond ``error_factor`` times the recorded one (errors below ``error_floor`` of
  the output scale are float32 noise and never count),
- its speed ratio dropped by more than ``speed_margin`` (a fraction of the recorded ratio).

Why multiples: the floor is what float32 rounding alone moves this model's outputs on this
machine and NNabla version. Another NNabla (other kernels, another summation order) or
machine moves the floor and an honest conversion's error together, so comparing raw errors
would call that a regression; comparing each error with its own floor does not, while a
conversion that got worse relative to the rounding noise is still caught. The factor is
tighter than the raw one: on one machine the floor is measured with fixed seeds, so the
same conversion gives the same multiple, and what another machine changes in the floor
estimate is bounded by its spread over perturbation seeds, at most 2.4x (median 1.6x) on
the default models.

Versions: 3 keeps ``noise_floor`` and ``noise_multiple``; files of versions 1 and 2 load
and compare with raw errors (their entries have no floor), and saving into one writes
version 3, keeping its entries. Rows measured on another machine or device are not compared
across (timings and rounding differ); the comparison says so instead. Only the controller
writes a baseline, atomically.
"""
from dataclasses import dataclass
import os

from .files import ReportFileError, read_json, write_json_atomic

__all__ = ["BASELINE_FORMAT", "BASELINE_VERSION", "BASELINE_VERSIONS", "Thresholds", "Baseline",
           "Comparison"]

BASELINE_FORMAT = "gcverify-baseline"
BASELINE_VERSION = 3  # 3: entries keep noise_floor and noise_multiple
BASELINE_VERSIONS = (1, 2, 3)
KEPT = ("converter", "model", "device", "device_label", "machine", "nnabla", "outcome",
        "histogram_before", "histogram_after", "max_abs_error", "max_rel_error", "error_scale",
        "normalized_error", "rms_error", "output_checksum", "conversion_time", "time_original",
        "time_converted", "speed_ratio", "speed_judged", "noise_floor", "noise_multiple")
SAVED_OUTCOMES = ("passed", "xfailed")


@dataclass(frozen=True)
class Thresholds:
    error_factor: float = 4.0
    error_floor: float = 1e-6
    speed_margin: float = 0.25
    multiple_factor: float = 2.5
    multiple_floor: float = 1.0


@dataclass
class Comparison:
    status: str  # "compared", "not compared", "new"
    problems: list
    note: str = ""

    @property
    def regressed(self):
        return bool(self.problems)


def _key(row_id, machine):
    return "{} @ {}".format(row_id, machine)


def _histogram_change(old, new):
    keys = sorted(set(old) | set(new))
    return ", ".join("{} {}->{}".format(k, old.get(k, 0), new.get(k, 0))
                     for k in keys if old.get(k, 0) != new.get(k, 0))


class Baseline:
    def __init__(self, entries=None, path=None, version=BASELINE_VERSION):
        self.entries = dict(entries or {})
        self.path = path
        self.version = version  # of the file it was loaded from

    @classmethod
    def load(cls, path):
        doc = read_json(path, BASELINE_FORMAT, "baseline",
                        hint=" (create one with --gc-save-baseline={})".format(path),
                        versions=BASELINE_VERSIONS)
        entries = doc.get("entries")
        if not isinstance(entries, dict) or not all(
                isinstance(e, dict) and "histogram_after" in e for e in entries.values()):
            raise ReportFileError("baseline {} has no valid 'entries' (truncated or edited by "
                                  "hand?)".format(path))
        return cls(entries, path, doc["version"])

    @staticmethod
    def savable(row):
        return row.outcome in SAVED_OUTCOMES and row.histogram_after is not None

    def update(self, rows):
        """Record ``rows`` (those that ran: passed or expected peer failures)."""
        n = 0
        for row in rows:
            if self.savable(row):
                self.entries[_key(row.id, row.machine)] = {k: getattr(row, k) for k in KEPT}
                n += 1
        return n

    def save(self, path):
        write_json_atomic(path, dict(format=BASELINE_FORMAT, version=BASELINE_VERSION,
                                     entries=self.entries), what="baseline")

    @classmethod
    def save_rows(cls, path, rows):
        """Write ``rows`` into the baseline at ``path``, keeping entries of other rows and
        machines; refuses to replace a file that is not a gcverify baseline (an empty file is
        replaced)."""
        base = cls.load(path) if os.path.exists(path) and os.path.getsize(path) else cls()
        n = base.update(rows)
        base.save(path)
        return n

    def compare(self, row, thresholds=Thresholds()):
        """How ``row`` (a Row) compares with its entry: a :class:`Comparison`."""
        entry = self.entries.get(_key(row.id, row.machine))
        if entry is None:
            others = [e.get("machine") for k, e in self.entries.items() if k.startswith(row.id + " @ ")]
            if others:
                return Comparison("not compared", [], "baseline has this row only from {}".format(
                    others[0]))
            return Comparison("new", [], "not in the baseline")
        if entry.get("device") != row.device:
            return Comparison("not compared", [], "baseline measured on {}".format(entry.get("device")))
        problems = []
        for when in ("before", "after"):
            old, new = entry.get("histogram_" + when) or {}, getattr(row, "histogram_" + when) or {}
            if new and old != new:
                problems.append("layer counts {} conversion changed: {}".format(
                    when, _histogram_change(old, new)))
        notes = []
        problems += _error_growth(entry, row, thresholds, notes)
        old, new = entry.get("speed_ratio"), row.speed_ratio
        judged = entry.get("speed_judged") is not False and row.speed_judged is not False
        if judged and old is not None and new is not None and new < old * (1.0 - thresholds.speed_margin):
            problems.append("speed ratio dropped {:.2f}x -> {:.2f}x (margin {:.0%})".format(
                old, new, thresholds.speed_margin))
        if row.output_checksum != entry.get("output_checksum"):
            notes.append("output checksum differs from the baseline")
        return Comparison("compared", problems, "; ".join(notes))


def _error_growth(entry, row, thresholds, notes):
    """The error problems of ``row`` against ``entry`` (the rule: module docstring); appends
    what a reader should know to ``notes``."""
    old_floor, new_floor = entry.get("noise_floor"), row.noise_floor
    old, new = entry.get("noise_multiple"), row.noise_multiple
    if old is not None and new is not None and old_floor is not None and new_floor is not None:
        if old_floor > 0 and new_floor > 0 and max(old_floor, new_floor) > 1.25 * min(old_floor, new_floor):
            notes.append("noise floor {:.3g} -> {:.3g}: errors compared as multiples of it".format(
                old_floor, new_floor))
        limit = thresholds.multiple_factor * max(old, thresholds.multiple_floor)
        if new > limit:
            return ["error grew {:.3g}x -> {:.3g}x the noise floor (floor {:.3g} -> {:.3g}; limit {:g}x "
                    "the baseline's multiple, which counts as at least {:g})".format(
                        old, new, old_floor, new_floor, thresholds.multiple_factor,
                        thresholds.multiple_floor)]
        return []
    if new is not None:
        notes.append("the baseline has no noise floor for this row: errors compared raw")
    problems = []
    for name in ("normalized_error", "rms_error"):
        old, new = entry.get(name), getattr(row, name)
        if old is None or new is None:
            continue
        limit = thresholds.error_factor * max(old, thresholds.error_floor)
        if new > limit:
            problems.append("{} grew {:.3g} -> {:.3g} (limit {:g}x the baseline, floor {:g})".format(
                name.replace("_", " "), old, new, thresholds.error_factor, thresholds.error_floor))
    return problems
