"""Fixtures of the built-in rows' tests: one matrix case, run exactly as the plugin runs it."""
import pytest

from gcverify.plugin.options import OPTIONS
from gcverify.plugin.session import Case, Session
from gcverify.plugin.worker import verify_case

_DEFAULTS = {key: default for _, key, _, default in OPTIONS}


@pytest.fixture
def matrix_verdict():
    """``matrix_verdict(converter, model_spec, extra=())``: the Verdict of the matrix row
    ``[<converter>-<model>-cpu]`` (``--gc-models=<model> --gc-converters=<converter>``), with
    the ConverterSpecs ``extra`` registered beside the built-in rows."""
    def run(converter, spec, extra=()):
        session = Session()
        session.models.add(spec)
        for other in extra:
            session.converters.add(other)
        settings = {"gc_models": spec.name, "gc_converters": converter, "gc_speed_repeats": "1"}
        session.configure(lambda key: settings.get(key) or _DEFAULTS[key])
        return verify_case(session, Case(converter, spec.name, spec.name, "cpu"))
    return run
