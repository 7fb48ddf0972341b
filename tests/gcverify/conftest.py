"""Fixtures of the gcverify tests."""
import pytest

from gcverify.core.model import ModelSpec
from gcverify.plugin.options import OPTIONS
from gcverify.plugin.session import Case, Session
from gcverify.plugin.worker import verify_case
from gcverify.report.row import Row

DEFAULTS = {key: default for _, key, _, default in OPTIONS}


@pytest.fixture
def run_row():
    """``run_row(converter, model, converters=(), **options)``: the Verdict of one matrix case
    on cpu, exactly as a matrix row runs it. ``model``: a zoo name or a ModelSpec;
    ``converters``: extra ConverterSpecs to register; ``options``: ini keys (``gc_speed_repeats``)."""
    def run(converter, model, converters=(), **options):
        session = Session()
        if isinstance(model, ModelSpec):
            session.models.add(model)
        for spec in converters:
            session.converters.add(spec)
        name = model.name if isinstance(model, ModelSpec) else model
        settings = {"gc_models": name, "gc_converters": getattr(converter, "name", converter), **options}
        session.configure(lambda key: settings.get(key) or DEFAULTS[key])
        return verify_case(session, Case(settings["gc_converters"], name, name, "cpu"))
    return run


@pytest.fixture
def row():
    """A factory of plausible matrix rows: ``row("identity", outcome="xfailed", speed_ratio=2.0)``."""
    def row(conv="bn_fold", model="lenet", device="cpu", outcome="passed", **kw):
        r = dict(converter=conv, model=model, device=device,
                 outcome=outcome, machine="m1", functions_before=12, functions_after=9,
                 histogram_before={"Convolution": 2, "BatchNormalization": 3},
                 histogram_after={"Convolution": 2}, removed={"BatchNormalization": 3}, added={},
                 max_abs_error=3e-6, max_rel_error=1e-5, normalized_error=1e-6, rms_error=1e-7,
                 tolerance="rtol=0.0001", tolerance_preset="float32", conversion_time=0.01, speed_ratio=1.2)
        r.update(kw)
        return Row("{}-{}-{}".format(conv, model, device), **r)
    return row
