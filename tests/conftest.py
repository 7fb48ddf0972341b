import numpy as np
import pytest

from converters.graph_view import all_parameters


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture(autouse=True)
def global_scope_untouched():
    """Every test must leave NNabla's global parameter scope exactly as it found it."""
    before = {k: (id(v), v.d.copy()) for k, v in all_parameters().items()}
    yield
    after = all_parameters()
    assert set(after) == set(before), "global parameter scope changed: {}".format(
        sorted(set(after) ^ set(before))[:10])
    for k, (ident, data) in before.items():
        assert id(after[k]) == ident and np.array_equal(after[k].d, data), k
