"""A pytest plugin (``-p matrix_phases``) that charges the CPU time of every matrix row to
the phase that spent it, from outside gcverify: it wraps the functions ``run_case`` calls.

Why wrapping rather than hooks in gcverify: the benchmark must measure the code as it is,
without the code knowing. ``gcverify.verify.case`` calls each phase through a name it
imported (``convert_model``, ``numeric_check``, ``saved_check``, ...), so replacing that
module attribute puts a timer around every call; the model cache and the facts cache are
wrapped on their classes. Times are **exclusive**: a stack of the phases running now, and
the CPU since the last event goes to the innermost one, so a copy made inside the speed
check counts once, as speed. CPU is ``time.process_time()`` (this process, all threads).

Each process that runs cases (an xdist worker, or the only process without xdist) writes
``{phase: seconds, ...}`` plus its whole CPU (``getrusage(RUSAGE_SELF)``) and the number of
cases to ``$GC_PHASES_DIR/<pid>.json`` when pytest ends; ``bench_matrix.py`` adds them up.
Off unless ``GC_PHASES_DIR`` is set.
"""
import functools
import json
import os
import resource
import time

PHASES_DIR = "GC_PHASES_DIR"

# (module, attribute, phase) of gcverify.verify.case's names; classes: (module, class, method)
CASE_FUNCTIONS = (
    ("copy_model", "model copy"),
    ("_independent_reference", "reference hook"),
    ("convert_model", "conversion"),
    ("untouched_check", "structural checks"),
    ("wiring_check", "structural checks"),
    ("random_functions_check", "structural checks"),
    ("layer_check", "structural checks"),
    ("changed_functions", "structural checks"),
    ("GraphView", "structural checks"),
    ("_write_graphs", "graph files"),
    ("runnable_outputs", "numeric: run converted"),
    ("run_conversion", "numeric: run converted"),
    ("numeric_check", "numeric: compare"),
    ("quantization_check", "numeric: quantizer spec"),
    ("divergence", "numeric: locate divergence"),
    ("_constants_gone", "numeric: compare"),
    ("saved_check", "saved check"),
    ("attach_details", "details (graphs, profile)"),
    ("speed_check", "speed timing"),
    ("_baseline", "baseline"),
    ("run_case", "case glue (row, feed, contexts)"),
)
METHODS = (
    ("gcverify.plugin.session", "ModelCache", "get", "model build"),
    ("gcverify.verify.model_facts", "FactsCache", "get", "model facts: reference"),
    ("gcverify.verify.model_facts", "FactsCache", "noise_floor", "model facts: noise floor"),
    ("gcverify.verify.snapshot", "Snapshot", "take", "structural checks"),
)


class PhaseClock:
    """Exclusive CPU per phase: ``with clock.phase(name)`` nests."""

    def __init__(self, clock=time.process_time):
        self.clock, self.totals, self.stack, self.calls = clock, {}, [], {}
        self.mark = clock()

    def _charge(self):
        now = self.clock()
        if self.stack:
            top = self.stack[-1]
            self.totals[top] = self.totals.get(top, 0.0) + (now - self.mark)
        self.mark = now

    def enter(self, name):
        self._charge()
        self.stack.append(name)
        self.calls[name] = self.calls.get(name, 0) + 1

    def leave(self):
        self._charge()
        self.stack.pop()

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()
        timed.__wrapped_phase__ = name
        return timed


def install(clock):
    """Wrap the phase functions in this process; returns the originals to restore."""
    import importlib

    from gcverify.verify import case
    undo = []
    for attr, name in CASE_FUNCTIONS:
        original = getattr(case, attr)
        undo.append((case, attr, original))
        setattr(case, attr, clock.wrap(name, original))
    for module, cls_name, method, name in METHODS:
        cls = getattr(importlib.import_module(module), cls_name)
        raw = cls.__dict__[method]
        undo.append((cls, method, raw))
        if isinstance(raw, classmethod):
            setattr(cls, method, classmethod(clock.wrap(name, raw.__func__)))
        else:
            setattr(cls, method, clock.wrap(name, raw))
    return undo


def uninstall(undo):
    for owner, attr, original in reversed(undo):
        setattr(owner, attr, original)


_state = {}


def _runs_cases(config):
    """An xdist worker, or a process without xdist workers (the xdist controller runs none)."""
    if hasattr(config, "workerinput"):
        return True
    return not getattr(config.option, "numprocesses", None)


def pytest_configure(config):
    if os.environ.get(PHASES_DIR) and _runs_cases(config):
        _state["clock"] = PhaseClock()
        _state["undo"] = install(_state["clock"])


def pytest_unconfigure(config):
    clock = _state.pop("clock", None)
    if clock is None:
        return
    uninstall(_state.pop("undo"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    doc = dict(phases=clock.totals, calls=clock.calls, cases=clock.calls.get(CASE_FUNCTIONS[-1][1], 0),
               process_cpu=usage.ru_utime + usage.ru_stime)
    path = os.path.join(os.environ[PHASES_DIR], "{}.json".format(os.getpid()))
    with open(path, "w") as f:
        json.dump(doc, f)
