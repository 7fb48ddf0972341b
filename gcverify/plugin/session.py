"""One pytest process's gcverify state: the registries (built-in entries plus what conftest
files mark), the settings, the case list (and under ``--gc-shard`` the plan saying which
cases this shard runs), the models built so far and the loaded baseline.

Plain Python (no pytest hooks); the plugin creates one :class:`Session` per process (the
controller and each xdist worker) from the same options, so every process derives the same
case list, and only when gcverify is used (a ``--gc-*`` option, a ``gc_*`` fixture, ``gc_case``).
"""
import os
from dataclasses import dataclass

from ..api import default_converters, default_models
from ..report.baseline import Baseline
from ..report.files import ReportFileError
from ..verify.case import CaseSettings
from ..verify.devices import Device
from ..verify.model_facts import FactsCache
from ..verify.saved import SavedOptions
from .options import Settings, SettingsError

__all__ = ["Session", "Case", "ModelCache"]


@dataclass(frozen=True)
class Case:
    converter: str
    model: str  # the token as given (name, module:builder or .nnp path)
    model_label: str
    device: str

    @property
    def id(self):
        return "{}-{}-{}".format(self.converter, self.model_label, self.device)


class ModelCache:
    """Models built once per process (ResNet-50 takes a second); a build that fails is not
    retried for every row: its exception is kept and raised again."""

    def __init__(self, registry, seed=0):
        self.registry, self.seed, self._built = registry, seed, {}

    def get(self, token):
        if token not in self._built:
            try:
                self._built[token] = self.registry.build(token, seed=self.seed)
            except Exception as e:
                self._built[token] = e
        built = self._built[token]
        if isinstance(built, Exception):
            raise built
        return built


class Session:
    def __init__(self, worker_id=None, probe=None):
        self.worker_id, self.probe = worker_id, probe
        self.models = default_models()
        self.converters = default_converters()
        self.settings = None
        self._cache = None
        self._baseline = None
        self._facts = FactsCache()
        self.shard_plan = None  # a ShardPlan under --gc-shard

    def add_marked(self, module):
        """Models and converters marked in a conftest module."""
        self.models.add_marked(module)
        self.converters.add_marked(module)

    def configure(self, get):
        self.settings = Settings.parse(get, self.models, self.converters)
        self._cache = ModelCache(self.models, self.settings.seed)
        if self.settings.baseline:
            try:
                self._baseline = Baseline.load(self.settings.baseline)
            except ReportFileError as e:
                raise SettingsError("--gc-baseline: {}".format(e)) from None
        if self.settings.shard:
            from .sharding import plan_shards
            self.shard_plan = plan_shards(self)
        return self.settings

    @property
    def baseline(self):
        return self._baseline

    @property
    def cache(self):
        if self._cache is None:  # fixtures used without the plugin's configure step
            self._cache = ModelCache(self.models)
        return self._cache

    def device(self, name):
        return Device.select(name, self.worker_id, self.settings.gpus if self.settings else None,
                             probe=self.probe)

    def case_settings(self):
        s = self.settings
        return CaseSettings(speed_rounds=s.speed_repeats, speed_seconds=s.speed_seconds,
                            speed_strict=s.speed_strict, speed_peers=s.speed_peers, tolerance=s.tolerance,
                            baseline=self._baseline, thresholds=s.thresholds, graphs=s.graphs,
                            saved=SavedOptions(mode=s.saved), details=s.details, facts=self._facts)

    def cases(self):
        """Every selected converter x model x device; in the default matrix (no ``--gc-models``)
        without the models a converter ``skips_by_default``."""
        s = self.settings
        names = [self.models.resolve(t).name for t in s.models]
        labels = model_labels(names)
        return [Case(c, t, label, d) for c in s.converters for t, name, label in zip(s.models, names, labels)
                if s.models_given or name not in self.converters.get(c).skips_by_default
                for d in s.devices]

    def planned_cases(self):
        """The cases this process runs: all of them, or this shard's under --gc-shard."""
        if self.shard_plan is None:
            return self.cases()
        mine = set(self.shard_plan.cases_of(self.settings.shard[0]))
        return [c for c in self.cases() if c.id in mine]


def model_labels(names):
    """Readable, unique labels for case ids: a path is labelled by its file name, with as
    many parent directories as it takes to tell apart files of the same name."""
    parts = [os.path.normpath(n).split(os.sep) if os.sep in n else [n] for n in names]
    depth = [1] * len(names)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clashes = {l for l in labels if labels.count(l) > 1}
        grow = [i for i, l in enumerate(labels) if l in clashes and depth[i] < len(parts[i])]
        if not grow:
            return labels
        for i in grow:
            depth[i] += 1
