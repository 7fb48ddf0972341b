"""The plugin's options (``--gc-*`` and their ini keys) and the settings parsed from them.

Plain Python with no nnabla import: the plugin registers these options at every pytest
start, in every project that has gcverify installed. Parsing checks every value (unknown
names, unwritable outputs, bad numbers) and raises :class:`SettingsError` naming it.
"""
import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..report.baseline import BASELINE_FORMAT, Thresholds
from ..report.files import REPORT_FORMAT, ReportFileError, check_replaceable

__all__ = ["OPTIONS", "INI_KEYS", "Settings", "SettingsError"]

# (option, ini key, help, default); the command line wins over the ini file.
OPTIONS = (
    ("--gc-models", "gc_models", "comma list of model names, package.module:builder specs or "
     ".nnp paths (default: the registry's default set)", ""),
    ("--gc-device", "gc_device", "cpu, cudnn, both, or a comma list", "cpu"),
    ("--gc-converters", "gc_converters", "comma list of converter names, globs (nnabla_*) or "
     "kinds (ours, peer); default: all registered", ""),
    ("--gc-report", "gc_report", "write the matrix rows as JSON to this path", ""),
    ("--gc-baseline", "gc_baseline", "compare every row with this baseline; regressions fail", ""),
    ("--gc-save-baseline", "gc_save_baseline", "store this session's rows as a baseline here", ""),
    ("--gc-gpus", "gc_gpus", "GPU ids for cudnn (xdist worker gwN uses GPU N modulo the list; "
     "default: all visible)", ""),
    ("--gc-graphs", "gc_graphs", "write DOT (and SVG with graphviz) of each graph before/after "
     "conversion into this directory", ""),
    ("--gc-seed", "gc_seed", "seed of model parameters and inputs", "0"),
    ("--gc-speed-repeats", "gc_speed_repeats", "timed rounds per speed check (interleaved)", "5"),
    ("--gc-error-factor", "gc_error_factor", "baseline: allowed growth factor of errors", "4"),
    ("--gc-speed-margin", "gc_speed_margin", "baseline: allowed relative drop of speed ratios",
     "0.25"),
)
INI_KEYS = tuple(ini for _, ini, _, _ in OPTIONS)


class SettingsError(ValueError):
    """A bad option value; the plugin turns it into a pytest.UsageError."""


@dataclass
class Settings:
    models: List[str]
    devices: List[str]
    converters: List[str]
    report: Optional[str] = None
    baseline: Optional[str] = None
    save_baseline: Optional[str] = None
    gpus: Optional[List[int]] = None
    graphs: Optional[str] = None
    seed: int = 0
    speed_repeats: int = 5
    thresholds: Thresholds = field(default_factory=Thresholds)
    models_given: bool = False  # --gc-models named them (else: the registry's default set)

    @classmethod
    def parse(cls, get, models, converters):
        """``get(ini_key)`` gives the raw value; raises SettingsError with a clear message."""
        from ..core.registry import UnknownConverterError, UnknownModelError
        from ..verify.devices import UnknownDeviceError, parse_devices, parse_gpus
        try:
            tokens = [t.strip() for t in (get("gc_models") or "").split(",") if t.strip()]
            given = bool(tokens)
            tokens = tokens or models.default_names()
            for t in tokens:
                models.resolve(t)
            devices = parse_devices(get("gc_device"))
            chosen = [s.name for s in converters.select(get("gc_converters"))]
            gpus = parse_gpus(get("gc_gpus"))
        except (UnknownModelError, UnknownDeviceError, UnknownConverterError) as e:
            raise SettingsError(str(e.args[0]) if e.args else str(e)) from None
        paths = _output_paths(get)
        graphs = get("gc_graphs") or None
        if graphs and os.path.exists(graphs) and not os.path.isdir(graphs):
            raise SettingsError("--gc-graphs {} exists and is not a directory".format(graphs))
        return cls(tokens, devices, chosen, paths["gc_report"], get("gc_baseline") or None,
                   paths["gc_save_baseline"], gpus, graphs,
                   _number(get, "gc_seed", int, 0), _number(get, "gc_speed_repeats", int, 1),
                   Thresholds(error_factor=_number(get, "gc_error_factor", float, 1.0),
                              speed_margin=_number(get, "gc_speed_margin", float, 0.0)), given)


def _output_paths(get):
    """The report and baseline paths, checked before any test runs: no two options name one
    file (the report would overwrite the baseline), each output can be written and replaces
    only a file of its own kind."""
    paths = {key: get(key) or None for key in ("gc_report", "gc_save_baseline", "gc_baseline")}
    if paths["gc_report"]:
        for key in ("gc_baseline", "gc_save_baseline"):
            if paths[key] and os.path.realpath(paths[key]) == os.path.realpath(paths["gc_report"]):
                raise SettingsError("--gc-report and --{} both name {}; the report would overwrite "
                                    "the baseline".format(key.replace("_", "-"), paths[key]))
    for key, what, fmt in (("gc_report", "report", REPORT_FORMAT),
                           ("gc_save_baseline", "baseline", BASELINE_FORMAT)):
        if paths[key]:
            try:
                check_replaceable(paths[key], fmt, what, "--" + key.replace("_", "-"))
            except ReportFileError as e:
                raise SettingsError(str(e)) from None
    return paths


def _number(get, key, kind, minimum):
    raw = get(key)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise SettingsError("--{} takes a number, got {!r}".format(key.replace("_", "-"), raw)) from None
    if value < minimum:
        raise SettingsError("--{} must be >= {}, got {}".format(key.replace("_", "-"), minimum, raw))
    return value
