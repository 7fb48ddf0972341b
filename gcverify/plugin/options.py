"""The plugin's options (``--gc-*`` and their ini keys) and the settings parsed from them.

Plain Python with no nnabla import: the plugin registers these options at every pytest
start, in every project that has gcverify installed. Parsing checks every value (unknown
names, unwritable outputs, bad numbers) and raises :class:`SettingsError` naming it.
"""
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ..report.baseline import BASELINE_FORMAT, BASELINE_VERSIONS, Thresholds
from ..report.files import (HTML_MARKER, READABLE_VERSIONS, REPORT_FORMAT, ReportFileError,
                             check_replaceable, check_replaceable_text)

__all__ = ["OPTIONS", "INI_KEYS", "DETAILS", "Settings", "SettingsError", "parse_shard"]

DETAILS = ("failed", "all")

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
    ("--gc-tolerance", "gc_tolerance", "the numeric tolerance of rows that judge float32 rounding "
     "(default: 4x each model's measured noise floor): a preset (float32-fixed, float16) or "
     "key=value pairs (noise=8, rtol=1e-3, atol=1e-4, preset=...)", ""),
    ("--gc-html", "gc_html", "write the matrix as one self-contained HTML page (sortable table, "
     "graph pictures, error plots) to this path; implies --gc-details=all", ""),
    ("--gc-details", "gc_details", "rows that carry graph pictures and the per-layer error profile: "
     "failed (default) or all", "failed"),
    ("--gc-shard", "gc_shard", "run only shard K of N (K/N, 1 <= K <= N): the matrix split "
     "deterministically, balanced by each case's cost", ""),
    ("--gc-shard-costs", "gc_shard_costs", "a previous JSON report whose measured row durations "
     "balance --gc-shard (default: a static estimate)", ""),
    ("--gc-seed", "gc_seed", "seed of model parameters and inputs", "0"),
    ("--gc-speed-repeats", "gc_speed_repeats", "most paired rounds per speed check (it stops as soon "
     "as the verdict is confident)", "80"),
    ("--gc-speed-seconds", "gc_speed_seconds", "most CPU (or GPU wall) seconds per speed check", "20"),
    ("--gc-speed-strict", "gc_speed_strict", "yes: an inconclusive speed verdict fails too (for quiet "
     "benchmark machines)", "no"),
    ("--gc-speed-peers", "gc_speed_peers", "yes: time NNabla's peers too (their speed is shown, "
     "never ours to fix)", "no"),
    ("--gc-saved", "gc_saved", "write each converted graph as .nnp, reload it and require identical "
     "outputs: auto (graphs up to 64 MB of parameters; larger ones say they were skipped), all, "
     "off", "auto"),
    ("--gc-error-factor", "gc_error_factor", "baseline: allowed growth factor of errors judged by a "
     "fixed tolerance", "4"),
    ("--gc-multiple-factor", "gc_multiple_factor", "baseline: allowed growth factor of errors as "
     "multiples of the noise floor (rows judged against it)", "2.5"),
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
    tolerance: Optional[dict] = None
    speed_repeats: int = 80
    speed_seconds: float = 20.0
    speed_strict: bool = False
    speed_peers: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    saved: str = "auto"
    html: Optional[str] = None
    details: str = "failed"
    shard: Optional[Tuple[int, int]] = None  # (K, N), 1-based
    shard_costs: Optional[str] = None
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
        details = (get("gc_details") or "failed").strip()
        if details not in DETAILS:
            raise SettingsError("--gc-details takes {}, got {!r}".format(" or ".join(DETAILS), details))
        shard_costs = get("gc_shard_costs") or None
        if shard_costs and not os.path.isfile(shard_costs):
            raise SettingsError("--gc-shard-costs {}: no such report file".format(shard_costs))
        return cls(tokens, devices, chosen, paths["gc_report"], get("gc_baseline") or None,
                   paths["gc_save_baseline"], gpus, graphs,
                   _number(get, "gc_seed", int, 0), _tolerance(get("gc_tolerance")),
                   _number(get, "gc_speed_repeats", int, 1),
                   _number(get, "gc_speed_seconds", float, 0.0), _yes(get, "gc_speed_strict"),
                   _yes(get, "gc_speed_peers"),
                   Thresholds(error_factor=_number(get, "gc_error_factor", float, 1.0),
                              speed_margin=_number(get, "gc_speed_margin", float, 0.0),
                              multiple_factor=_number(get, "gc_multiple_factor", float, 1.0)),
                   _saved_mode(get),
                   html=paths["gc_html"], details="all" if paths["gc_html"] else details,
                   shard=parse_shard(get("gc_shard")), shard_costs=shard_costs,
                   models_given=given)


def parse_shard(text):
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N; empty -> None; SettingsError otherwise."""
    text = (text or "").strip()
    if not text:
        return None
    k, slash, n = text.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        k = n = None
    if not slash or k is None:
        raise SettingsError("--gc-shard takes K/N (run shard K of N, e.g. 2/3), got {!r}".format(text))
    if n < 1:
        raise SettingsError("--gc-shard {}: N, the number of shards, must be at least 1".format(text))
    if not 1 <= k <= n:
        raise SettingsError("--gc-shard {}: K must be between 1 and N={} (shards are numbered "
                            "1..{})".format(text, n, n))
    return k, n


_WHAT = dict(gc_report="report", gc_html="HTML report", gc_baseline="baseline",
             gc_save_baseline="baseline")


def _output_paths(get):
    """The report, HTML and baseline paths, checked before any test runs: no two options name
    one file (the report would overwrite the baseline), each output can be written and
    replaces only a file of its own kind."""
    paths = {key: get(key) or None for key in ("gc_report", "gc_html", "gc_save_baseline", "gc_baseline")}
    for out in ("gc_report", "gc_html"):
        for key in ("gc_report", "gc_baseline", "gc_save_baseline"):
            if key != out and paths[out] and paths[key] and \
                    os.path.realpath(paths[key]) == os.path.realpath(paths[out]):
                raise SettingsError("--{} and --{} both name {}; the {} would overwrite the {}".format(
                    out.replace("_", "-"), key.replace("_", "-"), paths[key], _WHAT[out], _WHAT[key]))
    try:
        for key, what, fmt, versions in (("gc_report", "report", REPORT_FORMAT, READABLE_VERSIONS),
                                         ("gc_save_baseline", "baseline", BASELINE_FORMAT,
                                          BASELINE_VERSIONS)):
            if paths[key]:
                check_replaceable(paths[key], fmt, what, "--" + key.replace("_", "-"), versions)
        if paths["gc_html"]:
            check_replaceable_text(paths["gc_html"], HTML_MARKER, "HTML report", "--gc-html")
    except ReportFileError as e:
        raise SettingsError(str(e)) from None
    return paths


def _tolerance(text):
    """``--gc-tolerance``: a preset name or ``key=value`` pairs, as Tolerance overrides."""
    from ..core.expectations import TOLERANCES, Tolerance
    text = (text or "").strip()
    if not text:
        return None
    if "=" not in text:
        overrides = {"preset": text}
    else:
        overrides = {}
        for part in text.split(","):
            key, _, value = part.partition("=")
            key, value = key.strip(), value.strip()
            try:
                overrides[key] = value if key == "preset" else float(value)
            except ValueError:
                raise SettingsError("--gc-tolerance: {}={!r} is not a number".format(key, value)) from None
    if "preset" in overrides and overrides["preset"] not in TOLERANCES:
        raise SettingsError("--gc-tolerance: unknown preset {!r}; presets: {}".format(
            overrides["preset"], ", ".join(TOLERANCES)))
    try:
        Tolerance().merged(overrides)
    except ValueError as e:
        raise SettingsError("--gc-tolerance: {}".format(e)) from None
    return overrides


def _yes(get, key):
    raw = str(get(key) or "no").strip().lower()
    if raw not in ("yes", "no", "true", "false", "1", "0", "on", "off"):
        raise SettingsError("--{} takes yes or no, got {!r}".format(key.replace("_", "-"), raw))
    return raw in ("yes", "true", "1", "on")


def _saved_mode(get):
    mode = (get("gc_saved") or "auto").strip()
    if mode not in ("auto", "all", "off"):  # verify.saved.SAVED_MODES, without importing nnabla
        raise SettingsError("--gc-saved takes auto, all or off, got {!r}".format(mode))
    return mode


def _number(get, key, kind, minimum):
    raw = get(key)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise SettingsError("--{} takes a number, got {!r}".format(key.replace("_", "-"), raw)) from None
    if value < minimum:
        raise SettingsError("--{} must be >= {}, got {}".format(key.replace("_", "-"), minimum, raw))
    return value
