"""gcverify's pytest plugin: options, the converter x model x device matrix, fixtures.

Only wiring lives here, and it is light: pytest loads this module in every project that has
gcverify installed, so importing it imports neither nnabla nor any converter. The
:class:`~gcverify.plugin.session.Session` (registries, settings, cases) is made when
gcverify is used: at configure time when a ``--gc-*`` option or a ``gc_*`` ini key is given
(so bad values are usage errors before any test runs), otherwise when ``gc_case`` is
parametrised or a ``gc_*`` fixture is used. Each process (the controller and every xdist
worker) makes its own from the same options, so all collect the same cases. Workers run
cases (:mod:`.worker`) and put each row on its test report as JSON; the controller gathers
rows (:mod:`.controller`), prints the table once and writes the report, the HTML page and
the baseline. Under ``--gc-shard=K/N`` every process deselects the same cases
(:mod:`.sharding`). Disable with ``-p no:gcverify``.

Models and converters marked in conftest.py files (``@gcverify.model``, ``@gcverify.converter``)
join the session's registries; a model named in ``--gc-models`` must come from a conftest
that pytest loads before collecting (the root directory's, or one in a directory given on
the command line).
"""
import os

import pytest

from .options import OPTIONS, SettingsError

pytest_plugins = ("gcverify.plugin.fixtures",)

SESSION = pytest.StashKey()
ROW = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("gcverify", "gcverify: verify NNabla graph conversions")
    for option, ini, help_text, default in OPTIONS:
        group.addoption(option, dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=default)


def pytest_addhooks(pluginmanager):
    from . import hookspecs
    pluginmanager.add_hookspecs(hookspecs)


def _is_worker(config):
    return hasattr(config, "workerinput")


class SessionHolder:
    """Makes the process's Session on first use; remembers conftest modules seen before."""

    def __init__(self, config):
        self.config = config
        self._session = None
        self._conftests = []

    @property
    def created(self):
        return self._session is not None

    def add_conftest(self, module):
        if self._session is None:
            self._conftests.append(module)
        else:
            self._session.add_marked(module)

    def get(self):
        if self._session is None:
            from .session import Session
            config = self.config
            worker = config.workerinput["workerid"] if _is_worker(config) else None
            session = Session(worker, probe=config.hook.pytest_gcverify_cuda_probe(config=config))
            for module in self._conftests:
                session.add_marked(module)
            try:
                session.configure(self._option)
            except SettingsError as e:
                raise pytest.UsageError("gcverify: {}".format(e)) from None
            self._session, self._conftests = session, []
        return self._session

    def _option(self, key):
        value = self.config.getoption(key)
        return self.config.getini(key) if value is None else value

    def asked_for(self):
        """Whether the command line or the ini file sets any gcverify option (to other than
        its default)."""
        return any(self.config.getoption(key) is not None or self.config.getini(key) != default
                   for _, key, _, default in OPTIONS)


class _ConftestWatcher:
    """Hands every conftest module to the holder, including those registered before us
    (pytest replays ``pytest_plugin_registered``)."""

    def __init__(self, holder):
        self.holder = holder

    def pytest_plugin_registered(self, plugin):
        if os.path.basename(getattr(plugin, "__file__", "") or "") == "conftest.py":
            self.holder.add_conftest(plugin)


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
    holder = SessionHolder(config)
    config.stash[SESSION] = holder
    config.pluginmanager.register(_ConftestWatcher(holder), "gcverify-conftests")
    if holder.asked_for():
        holder.get()  # check every option value now: a bad one is a usage error at start
    if not _is_worker(config):
        from .controller import Collector
        config.pluginmanager.register(_ControllerHooks(Collector(holder)), "gcverify-controller")


def pytest_generate_tests(metafunc):
    if "gc_case" in metafunc.fixturenames:
        cases = metafunc.config.stash[SESSION].get().cases()
        metafunc.parametrize("gc_case", cases, ids=[c.id for c in cases])
    elif "gc_device" in metafunc.fixturenames:
        names = metafunc.config.stash[SESSION].get().settings.devices
        metafunc.parametrize("gc_device", names, ids=names, indirect=True)


def pytest_collection_modifyitems(config, items):
    """--gc-shard=K/N: keep this shard's cases (the same plan in every process)."""
    holder = config.stash[SESSION]
    if not holder.created or holder.get().shard_plan is None:
        return
    from .sharding import split_items
    session = holder.get()
    kept, dropped = split_items(items, session.shard_plan, session.settings.shard[0])
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    row = item.stash.get(ROW, None)
    if row is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        from .worker import attach_row
        attach_row(item, report, row)
    return report
