"""The plugin's fixtures: thin wrappers over the session and :mod:`gcverify.api`. Nothing
heavy is imported until a fixture is used."""
import pytest

from . import ROW, SESSION


@pytest.fixture(scope="session")
def gc_session(pytestconfig):
    """The gcverify session: ``.models`` and ``.converters`` registries, ``.settings``."""
    return pytestconfig.stash[SESSION].get()


@pytest.fixture
def gc_verify(request, gc_session):
    """``gc_verify(case)`` runs one matrix case with every check; the verification suite's
    test is just ``def test_conversion(gc_case, gc_verify): gc_verify(gc_case)``."""
    from .worker import enforce, verify_case

    def verify(case):
        __tracebackhide__ = True
        verdict = verify_case(gc_session, case)
        request.node.stash[ROW] = verdict.row
        enforce(verdict)
    return verify


@pytest.fixture
def gc_model(gc_session):
    """Factory: ``gc_model("lenet")`` (a zoo or registered name, ``module:builder`` or an
    ``.nnp`` path; ``seed=`` optional) returns a fresh, faithful copy of the built
    :class:`gcverify.Model` with its seeded ``input_data``. Builds are cached per process."""
    from ..verify.model_copy import copy_model

    def build(name, seed=None):
        if seed is None or seed == gc_session.cache.seed:
            return copy_model(gc_session.cache.get(name))
        return gc_session.models.build(name, seed=seed)
    return build


@pytest.fixture
def gc_device(request, gc_session):
    """The device to run on (a :class:`gcverify.verify.devices.Device`: ``.name``,
    ``.context()``). Parametrised over ``--gc-device``; a device that is unavailable here
    skips the test with the reason. Use ``with nn.context_scope(gc_device.context()): ...``."""
    name = getattr(request, "param", None) or gc_session.settings.devices[0]
    device = gc_session.device(name)
    reason = device.unavailable()
    if reason:
        pytest.skip(reason)
    return device


@pytest.fixture
def gc_convert(gc_session):
    """``gc_convert(converter, model)``: converter is a registered name (``"bn_fold"``), a
    ConverterSpec, or any ``convert(model)`` callable. Returns a Conversion: ``.outputs``,
    ``.inputs`` (what to feed), ``.var_map``, ``.parameters``, ``.seconds``."""
    from .. import api
    return lambda converter, model: api.convert(converter, model, gc_session.converters)


@pytest.fixture
def gc_assert_equivalent():
    """``gc_assert_equivalent(model, converted, tolerance=None, inputs=None)``: forwards
    both graphs on the model's data and fails with max abs/rel error, the smallest passing
    atol/rtol, mismatching elements and (when known) the first diverging function.
    ``tolerance``: a preset name ("float32", "exact", "quantizer"), a dict or a Tolerance."""
    from .. import api
    return api.assert_equivalent


@pytest.fixture
def gc_assert_saved():
    """``gc_assert_saved(model, converted, inputs=None, path=None)``: writes the converted
    graph with NNabla's .nnp saver, reloads it with NNabla's loader and fails unless its
    outputs are bit-identical to the in-memory graph's (or when it cannot be saved, saying
    why). ``path`` keeps the file there."""
    from .. import api
    return api.assert_saved


@pytest.fixture
def gc_count_functions():
    """``gc_count_functions(outputs)`` -> Counter of function types;
    ``gc_count_functions(outputs, "BatchNormalization")`` -> int."""
    from .. import api
    return api.count_functions
