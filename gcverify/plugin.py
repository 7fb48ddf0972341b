"""gcverify's pytest plugin: options, the converter x model x device matrix, fixtures.

Only wiring lives here. Each process (the controller and every xdist worker) builds a
:class:`~gcverify.session.Session` from the same options, so all collect the same cases.
Workers run cases (:mod:`gcverify.runner`) and put each row on its test report as JSON;
the controller gathers rows (:mod:`gcverify.controller`), prints the table once and writes
the report and baseline. Disable with ``-p no:gcverify``.

Models and converters marked in conftest.py files (``@gcverify.model``,
``@gcverify.registry.converter``) join the session's registries. Option values are checked
when pytest configures, so a model named in ``--gc-models`` must come from the zoo, a
``module:builder`` spec, an ``.nnp`` path, or a conftest.py that pytest loads before
collecting (the root directory's, or one in a directory given on the command line).
"""
import os

import pytest

from . import api
from .controller import Collector
from .devices import Device
from .runner import attach_row, enforce, run_case
from .session import OPTIONS, Session, SettingsError

SESSION = pytest.StashKey()
ROW = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("gcverify", "gcverify: verify NNabla graph conversions")
    for option, ini, help_text, default in OPTIONS:
        group.addoption(option, dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=default)


def _is_worker(config):
    return hasattr(config, "workerinput")


class _ConftestWatcher:
    """Adds ``@gcverify.model`` / converter marks of every conftest module, including
    those registered before us (pytest replays ``pytest_plugin_registered``)."""

    def __init__(self, session):
        self.session = session

    def pytest_plugin_registered(self, plugin):
        if os.path.basename(getattr(plugin, "__file__", "") or "") == "conftest.py":
            self.session.add_marked(plugin)


class _ControllerHooks:
    """Controller only: gather rows from every report, write files, print the table once."""

    def __init__(self, collector):
        self.collector = collector

    def pytest_runtest_logreport(self, report):
        self.collector.add_report(report)

    def pytest_sessionfinish(self, session):
        if not self.collector.finish() and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        lines = self.collector.summary_lines()
        if lines:
            terminalreporter.write_sep("=", "gcverify matrix")
            for line in lines:
                terminalreporter.write_line(line)


def pytest_configure(config):
    worker = config.workerinput["workerid"] if _is_worker(config) else None
    session = Session(worker_id=worker)
    config.stash[SESSION] = session
    config.pluginmanager.register(_ConftestWatcher(session), "gcverify-conftests")

    def get(key):
        value = config.getoption(key)
        return config.getini(key) if value is None else value
    try:
        session.configure(get)
    except SettingsError as e:
        raise pytest.UsageError("gcverify: {}".format(e)) from None
    if not _is_worker(config):
        config.pluginmanager.register(_ControllerHooks(Collector(session)), "gcverify-controller")


def pytest_generate_tests(metafunc):
    session = metafunc.config.stash[SESSION]
    if "gc_case" in metafunc.fixturenames:
        cases = session.cases()
        metafunc.parametrize("gc_case", cases, ids=[c.id for c in cases])
    elif "gc_device" in metafunc.fixturenames:
        names = session.settings.devices
        metafunc.parametrize("gc_device", names, ids=names, indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    row = item.stash.get(ROW, None)
    if row is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        attach_row(item, report, row)
    return report


# --- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gc_session(pytestconfig):
    """The gcverify session: ``.models`` and ``.converters`` registries, ``.settings``."""
    return pytestconfig.stash[SESSION]


@pytest.fixture
def gc_verify(request, gc_session):
    """``gc_verify(case)`` runs one matrix case with every check; the verification suite's
    test is just ``def test_conversion(gc_case, gc_verify): gc_verify(gc_case)``."""
    def verify(case):
        __tracebackhide__ = True
        verdict = run_case(gc_session, case)
        request.node.stash[ROW] = verdict.row
        enforce(verdict)
    return verify


@pytest.fixture
def gc_model(gc_session):
    """Factory: ``gc_model("lenet")`` (a zoo or registered name, ``module:builder`` or an
    ``.nnp`` path; ``seed=`` optional) returns a fresh :class:`gcverify.Model` with its
    seeded ``input_data``. Builds are cached per process; each call gets its own copy."""
    from .runner import clone_model

    def build(name, seed=None):
        if seed is None or seed == gc_session.cache.seed:
            return clone_model(gc_session.cache.get(name))
        return gc_session.models.build(name, seed=seed)
    return build


@pytest.fixture
def gc_device(request, gc_session):
    """The device to run on (a :class:`gcverify.devices.Device`: ``.name``, ``.context()``).
    Parametrised over ``--gc-device``; a device that is unavailable here skips the test
    with the reason. Use ``with nn.context_scope(gc_device.context()): ...``."""
    name = getattr(request, "param", None) or gc_session.settings.devices[0]
    device = Device.select(name, gc_session.worker_id, gc_session.settings.gpus)
    reason = device.unavailable()
    if reason:
        pytest.skip(reason)
    return device


@pytest.fixture
def gc_convert(gc_session):
    """``gc_convert(converter, model)``: converter is a registered name (``"bn_fold"``), a
    ConverterSpec, or any ``convert(model)`` callable. Returns a Conversion: ``.outputs``,
    ``.inputs`` (what to feed), ``.var_map``, ``.parameters``, ``.seconds``."""
    return lambda converter, model: api.convert(converter, model, gc_session.converters)


@pytest.fixture
def gc_assert_equivalent():
    """``gc_assert_equivalent(model, converted, tolerance=None, inputs=None)``: forwards
    both graphs on the model's data and fails with max abs/rel error, the smallest passing
    atol/rtol, mismatching elements and (when known) the first diverging function.
    ``tolerance``: a preset name ("float32", "exact", "quantizer"), a dict or a Tolerance."""
    return api.assert_equivalent


@pytest.fixture
def gc_count_functions():
    """``gc_count_functions(outputs)`` -> Counter of function types;
    ``gc_count_functions(outputs, "BatchNormalization")`` -> int."""
    return api.count_functions
