"""Statistics recording: identity taps that watch chosen tensors during calibration forwards.

``RecordStatistics`` rebuilds the graph with a tap after each chosen tensor: an NNabla
``Identity`` function (``y = x`` exactly, gradient passed through), so a calibration graph
is an ordinary NNabla graph: it can be converted again, saved as ``.nnp`` and run anywhere.
The recording itself happens in NNabla's forward hook: forward with
``recorder.forward(outputs)`` (or ``nn.forward_all(outputs, function_post_hook=recorder.hook)``)
and each tap's output is folded into a :class:`TensorStatistics` record: min, max, mean and a
histogram of the whole tensor, and min, max, mean per channel. A plain ``y.forward()``
computes the same numbers and records nothing.

Nothing is global: the records live in the :class:`StatisticsRecorder` handed to the pass,
keyed by the *original* graph's variables, so a later pass on that same graph (e.g.
``qdq.QuantizeDequantize``) can look ranges up. The recorder knows its taps by function: a
copy of the calibration graph (converted again, or saved and loaded elsewhere) has taps of
its own; :meth:`StatisticsRecorder.tap_names` names the taps for a saved file, and
:meth:`StatisticsRecorder.from_taps` records through those of a loaded one.

The histogram keeps a fixed even number of bins ``[a, b)`` over ``[lo, lo + bins * width)``;
a value outside doubles the width (merging neighbouring bins, exact) and extends the range on the
side that overflowed, until everything fits. Counts are never re-estimated.
"""
import re

import nnabla as nn
import numpy as np

from .fixed_point import WEIGHT_OUTPUT_AXES, check_function_names
from .rewrite import GraphPass

__all__ = ["TensorStatistics", "StatisticsRecorder", "RecordStatistics", "TAP_PREFIX"]

# Saved calibration graphs name their taps "statistics_tap_<k>_<what it watches>".
TAP_PREFIX = "statistics_tap_"


def _check_bins(bins):
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2 or bins % 2:
        raise ValueError("bins must be an even number >= 2, got {!r}".format(bins))
    return int(bins)


class TensorStatistics:
    """What has been seen of one tensor over all calibration forwards.

    Attributes: ``label``, ``shape``, ``forwards``, ``elements``, ``min``, ``max``, ``mean``;
    per channel ``channel_min``, ``channel_max``, ``channel_mean`` (None without channels);
    the histogram ``counts`` over ``edges`` (``bins + 1`` values).
    """

    def __init__(self, label, shape, bins=256, channel_axis=1):
        self.label, self.shape, self.bins = label, tuple(shape), _check_bins(bins)
        ndim = len(self.shape)
        usable = channel_axis is not None and ndim >= 2 and -ndim <= channel_axis < ndim
        self.channel_axis = channel_axis if usable else None  # a vector has no channels
        self.reset()

    def reset(self):
        self.forwards = 0
        self.elements = 0
        self.min = self.max = None
        self._sum = 0.0
        self.channel_min = self.channel_max = None
        self._channel_sum, self._channel_count = None, 0
        self.counts, self.lo, self.width = None, None, None

    @property
    def mean(self):
        return self._sum / self.elements if self.elements else None

    @property
    def channel_mean(self):
        return self._channel_sum / self._channel_count if self._channel_count else None

    @property
    def edges(self):
        return None if self.counts is None else self.lo + self.width * np.arange(self.bins + 1)

    def update(self, x):
        x = np.asarray(x, dtype=np.float64)
        self.forwards += 1
        self.elements += x.size
        self._sum += float(x.sum())
        lo, hi = float(x.min()), float(x.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        if self.channel_axis is not None:
            axis = self.channel_axis % x.ndim
            others = tuple(a for a in range(x.ndim) if a != axis)
            cmin, cmax, csum = x.min(axis=others), x.max(axis=others), x.sum(axis=others)
            if self.channel_min is None:
                self.channel_min, self.channel_max, self._channel_sum = cmin, cmax, csum
            else:
                self.channel_min = np.minimum(self.channel_min, cmin)
                self.channel_max = np.maximum(self.channel_max, cmax)
                self._channel_sum = self._channel_sum + csum
            self._channel_count += x.size // x.shape[axis]
        self._add_to_histogram(x, lo, hi)

    def _add_to_histogram(self, x, lo, hi):
        if self.counts is None:
            span = hi - lo if hi > lo else max(abs(lo), 1.0)
            self.counts = np.zeros(self.bins, np.int64)
            # a hair wider, so that the maximum sits inside the last bin, not on its edge
            self.lo, self.width = lo, span / self.bins * (1 + 1e-9)
        half = self.bins // 2
        # Bins are [a, b): a value on the top edge would change bins when the range grows.
        while lo < self.lo or hi >= self.lo + self.bins * self.width:
            merged = self.counts.reshape(half, 2).sum(axis=1)
            if hi >= self.lo + self.bins * self.width:  # grow upwards: same lo
                self.counts = np.concatenate([merged, np.zeros(half, np.int64)])
            else:  # grow downwards: the old range becomes the upper half
                self.counts = np.concatenate([np.zeros(half, np.int64), merged])
                self.lo -= self.bins * self.width
            self.width *= 2
        top = self.lo + self.bins * self.width
        counts, _ = np.histogram(x, bins=self.bins, range=(self.lo, top))
        self.counts += counts

    def as_row(self):
        return {"tensor": self.label, "shape": self.shape, "forwards": self.forwards,
                "min": self.min, "max": self.max, "mean": self.mean}

    def __repr__(self):
        return "TensorStatistics({!r}, min={}, max={}, mean={}, forwards={})".format(
            self.label, self.min, self.max, self.mean, self.forwards)


class StatisticsRecorder:
    """Records of one recording conversion, keyed by the original graph's variables.

    Args:
        bins: histogram bins per tensor (even).
        channel_axis: axis of per-channel statistics (None: per tensor only).
    """

    def __init__(self, bins=256, channel_axis=1):
        if channel_axis is not None and (isinstance(channel_axis, bool) or
                                         not isinstance(channel_axis, (int, np.integer))):
            raise ValueError("channel_axis must be an axis number or None, got {!r}".format(
                channel_axis))
        self.bins, self.channel_axis = _check_bins(bins), channel_axis
        self._records = {}
        self._taps = {}  # tap function -> (its output, the record it feeds)

    def track(self, variable, label):
        if variable not in self._records:
            self._records[variable] = TensorStatistics(label, variable.shape, self.bins,
                                                       self.channel_axis)
        return self._records[variable]

    def attach(self, tap_output, record):
        """Feed ``record`` from the function computing ``tap_output`` at every hooked forward."""
        self._taps[tap_output.parent] = (tap_output, record)

    def hook(self, f):
        """NNabla ``function_post_hook``: fold a tap's output into its record."""
        tapped = self._taps.get(f)
        if tapped is not None:
            tapped[1].update(f.outputs[0].d)

    def forward(self, outputs, clear_buffer=False):
        """A calibration forward: ``nn.forward_all`` of ``outputs`` with :meth:`hook`."""
        outputs = [outputs] if isinstance(outputs, nn.Variable) else list(outputs)
        nn.forward_all(outputs, clear_buffer=clear_buffer, function_post_hook=self.hook)

    def taps(self):
        """``[(name, tap output variable, record)]``, names as :meth:`tap_names` gives them."""
        return [("{}{}_{}".format(TAP_PREFIX, k, re.sub(r"[^0-9A-Za-z]+", "_", r.label).strip("_")), out, r)
                for k, (out, r) in enumerate(self._taps.values())]

    def tap_names(self):
        """``{name: tap output variable}``: names for a saved calibration graph
        (``nnabla.utils.save``'s ``names``), ``TAP_PREFIX`` + number + what it watches."""
        return {name: out for name, out, _ in self.taps()}

    @classmethod
    def from_taps(cls, variables, bins=256, channel_axis=1):
        """A recorder for a loaded calibration graph: ``variables`` is ``{name: Variable}``
        (an ``NnpLoader`` network's ``variables``); every ``Identity`` output named
        ``TAP_PREFIX...`` becomes a tap, recorded under the variable it reads, labelled
        by its name."""
        recorder = cls(bins, channel_axis)
        for name, v in variables.items():
            if name.startswith(TAP_PREFIX) and v.parent is not None and v.parent.info.type_name == "Identity":
                recorder.attach(v, recorder.track(v.parent.inputs[0], name))
        if not recorder._taps:
            raise ValueError("no statistics tap (an Identity output named {}...) among {} "
                             "variables".format(TAP_PREFIX, len(variables)))
        return recorder

    def __getitem__(self, variable):
        try:
            return self._records[variable]
        except KeyError:
            raise KeyError("no statistics were recorded for a variable of shape {}".format(
                getattr(variable, "shape", "?"))) from None

    def __contains__(self, variable):
        return variable in self._records

    def __len__(self):
        return len(self._records)

    def __iter__(self):
        return iter(self._records.values())

    def items(self):
        return self._records.items()

    def range(self, variable, per_channel=False):
        """``(min, max)`` seen for ``variable``; per channel as arrays."""
        r = self[variable]
        if r.forwards == 0:
            raise ValueError("{}: no calibration forward has run yet (forward the recording graph "
                             "with recorder.forward(outputs), or nn.forward_all(outputs, "
                             "function_post_hook=recorder.hook))".format(r.label))
        return (r.channel_min, r.channel_max) if per_channel else (r.min, r.max)

    def reset(self):
        for r in self._records.values():
            r.reset()

    def table(self):
        return [r.as_row() for r in self._records.values()]


class RecordStatistics(GraphPass):
    """Insert taps (``Identity`` functions) recording chosen tensors into ``recorder`` at
    every forward with its hook.

    Args:
        recorder: a fresh :class:`StatisticsRecorder` (one per conversion).
        inputs_of: record the data input (input 0) of functions of these types; the default,
            inner-product layers, gives what quantize/dequantize insertion needs.
        functions: record the output of functions of these types (e.g. ``("ReLU",)``).
    """

    name = "record_statistics"

    def __init__(self, recorder, inputs_of=tuple(WEIGHT_OUTPUT_AXES), functions=()):
        if not isinstance(recorder, StatisticsRecorder):
            raise TypeError("recorder must be a StatisticsRecorder, got {!r}".format(recorder))
        self.recorder = recorder
        self.inputs_of = check_function_names(inputs_of, what="inputs_of") if inputs_of else ()
        self.functions = check_function_names(functions) if functions else ()
        if not self.inputs_of and not self.functions:
            raise ValueError("nothing to record: give inputs_of= or functions=")

    def plan(self, view):
        if len(self.recorder):
            raise ValueError("this StatisticsRecorder already serves another conversion; "
                             "give each conversion a new one")
        targets = {}
        for f in view.functions:
            kind = f.info.type_name
            if kind in self.functions:
                for i, o in enumerate(f.outputs):
                    suffix = "" if len(f.outputs) == 1 else "[{}]".format(i)
                    targets.setdefault(o, "output{} of {}".format(suffix, view.describe(f)))
            if kind in self.inputs_of:
                targets.setdefault(f.inputs[0], "input of {}".format(view.describe(f)))
        return {"targets": targets, "taps": {}}

    def _tap(self, old, new, b, plan):
        taps = plan["taps"]
        if old not in taps:
            with nn.auto_forward(False):  # a tap must only see calibration forwards
                taps[old] = b.call("Identity", [new], {})[0]
            self.recorder.attach(taps[old], self.recorder.track(old, plan["targets"][old]))
            where = old.parent if old.parent is not None else b.view.consumers(old)[0][0]
            b.note(where, "recorded", plan["targets"][old])
        return taps[old]

    def rewrite(self, f, inputs, b, plan):
        targets = plan["targets"]
        inputs = [self._tap(v, new, b, plan) if v.parent is None and v in targets else new
                  for v, new in zip(f.inputs, inputs)]
        outputs = b.copy(f, inputs)
        return [self._tap(o, new, b, plan) if o in targets else new
                for o, new in zip(f.outputs, outputs)]
