"""The matrix row: one (converter, model, device) case, everything measured about it.

A :class:`Row` is built on the worker that ran the case, travels to the controller as JSON
on the test report, and is what the table, the JSON report, the baselines and merged shard
reports hold. Its JSON form is a flat object of the fields that are set (``None`` fields are
left out) plus ``row_version``; :meth:`Row.from_json` reads every version so far (version 1
rows had the same keys and no ``row_version``) and keeps unknown keys in ``extra`` rather
than dropping them, so a newer report read by an older gcverify loses nothing.

The details for the HTML report (``dot_before``/``dot_after``, ``error_profile``) are new
optional keys that older rows simply lack; they change the meaning of no existing key, so
``ROW_VERSION`` stays 2.
"""
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

__all__ = ["Row", "ROW_VERSION", "FAILED_OUTCOMES"]

ROW_VERSION = 2
FAILED_OUTCOMES = ("failed", "crashed", "error")


@dataclass
class Row:
    # identity: which case, where it ran
    id: str
    converter: Optional[str] = None
    kind: Optional[str] = None           # "ours" or "peer"
    model: Optional[str] = None          # the model's label in case ids
    device: Optional[str] = None
    device_label: Optional[str] = None   # e.g. cudnn:1
    machine: Optional[str] = None        # hardware identity (not the host name)
    host: Optional[str] = None
    nnabla: Optional[str] = None
    python: Optional[str] = None
    # the verdict
    outcome: Optional[str] = None        # passed, failed, xfailed, xpassed, skipped, crashed
    message: Optional[str] = None
    notes: Optional[List[str]] = None    # facts a reader should know (stochastic model, inputs converted...)
    # numbers: the tolerance and what was measured against it
    tolerance: Optional[str] = None
    tolerance_preset: Optional[str] = None
    max_abs_error: Optional[float] = None
    max_rel_error: Optional[float] = None
    error_scale: Optional[float] = None
    normalized_error: Optional[float] = None
    rms_error: Optional[float] = None
    mismatches: Optional[int] = None
    elements: Optional[int] = None
    needed_atol: Optional[float] = None
    needed_rtol: Optional[float] = None
    noise_floor: Optional[float] = None     # float32 noise floor of the worst output, relative to its scale
    noise_multiple: Optional[float] = None  # max abs error / noise floor, over the outputs
    sqnr_db: Optional[float] = None         # quantizers: lowest per-output SQNR against the float model
    top1_agreement: Optional[float] = None  # quantizers: lowest top-1 agreement of classifier outputs
    quantized_tensors: Optional[int] = None  # quantizers: weights and activations checked against the spec
    off_grid_tensors: Optional[int] = None
    wide_probe: Optional[str] = None        # quantizers: the check on inputs beyond the calibrated ranges
    output_checksum: Optional[str] = None
    # layers
    functions_before: Optional[int] = None
    functions_after: Optional[int] = None
    histogram_before: Optional[Dict[str, int]] = None
    histogram_after: Optional[Dict[str, int]] = None
    removed: Optional[Dict[str, int]] = None
    added: Optional[Dict[str, int]] = None
    functions_changed: Optional[int] = None  # of the original's functions: altered or removed
    functions_added: Optional[int] = None
    kept: Optional[List[str]] = None     # each function a layer rule wanted gone that stayed, and why
    # time
    conversion_time: Optional[float] = None
    first_forward_time: Optional[float] = None
    time_original: Optional[float] = None
    time_converted: Optional[float] = None
    speed_ratio: Optional[float] = None
    speed_low: Optional[float] = None    # the ratio's confidence interval
    speed_high: Optional[float] = None
    speed_confidence: Optional[float] = None  # the interval's level (per look, after the correction)
    speed_rounds: Optional[int] = None
    speed_verdict: Optional[str] = None  # met, missed, inconclusive, not judged
    speed_judged: Optional[bool] = None
    speed_note: Optional[str] = None
    # the converted graph written as .nnp and reloaded (verify/saved.py)
    saved: Optional[str] = None          # identical, differs, skipped: ..., unsaveable: ..., off
    saved_bytes: Optional[int] = None
    saved_time: Optional[float] = None
    # comparisons and files
    baseline: Optional[str] = None
    graphs: Optional[List[str]] = None
    graphs_error: Optional[str] = None
    # details for the HTML report (gcverify.verify.details): only when asked or failed
    dot_before: Optional[str] = None     # Graphviz DOT, changed functions highlighted
    dot_after: Optional[str] = None
    error_profile: Optional[List[Dict[str, object]]] = None  # per mapped original function
    profile_note: Optional[str] = None   # why there is no (or only a partial) profile
    duration: Optional[float] = None     # seconds the case's test took (shard planning)
    extra: Dict[str, object] = field(default_factory=dict)
    # issue #12 item 4, after every earlier field (rows of older versions simply lack them)
    new_parameters: Optional[int] = None       # parameters the conversion created (verify/gradients.py)
    gradient_mismatches: Optional[int] = None  # of those, how many need a gradient when they should not, or not when they should
    low_rank_layers: Optional[int] = None      # low rank below full energy (verify/low_rank_check.py): layers split
    low_rank_bound: Optional[float] = None     # worst error / discarded-energy bound over the split layers (<= 1 passes)
    discarded_energy: Optional[float] = None   # largest share of sum s_i^2 a split layer discarded

    def update(self, figures):
        """Set the fields named in ``figures`` (a dict a check measured); unknown names are an
        error, so a misspelt figure never vanishes silently."""
        names = _field_names()
        unknown = sorted(set(figures) - names)
        if unknown:
            raise KeyError("Row has no field(s) {}".format(", ".join(unknown)))
        for k, v in figures.items():
            setattr(self, k, v)
        return self

    @property
    def failed(self):
        return self.outcome in FAILED_OUTCOMES

    @property
    def quantizer(self):
        """A quantizing conversion's row: checked against a declared spec, or judged by the
        quantizer preset (its noise is the point: per-layer SQNR tells where it costs most)."""
        return self.quantized_tensors is not None or self.tolerance_preset == "quantizer"

    def to_json(self):
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name != "extra" and getattr(self, f.name) is not None}
        d.update(self.extra)
        d["row_version"] = ROW_VERSION
        return d

    @classmethod
    def from_json(cls, d):
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise ValueError("a row is a JSON object with a string 'id', not {!r}".format(d)[:200])
        version = d.get("row_version", 1)
        if not isinstance(version, int) or version > ROW_VERSION:
            raise ValueError("row {} has row_version {!r}; this gcverify reads up to {}".format(
                d["id"], version, ROW_VERSION))
        names = _field_names()
        known = {k: v for k, v in d.items() if k in names and k != "extra"}
        extra = {k: v for k, v in d.items() if k not in names and k != "row_version"}
        return cls(extra=extra, **known)


def _field_names():
    return {f.name for f in fields(Row)}
