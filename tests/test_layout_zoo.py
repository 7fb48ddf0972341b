"""Layout conversion on every default zoo network: numbers, counts, exact round trip."""
import pytest

from converters.graph_view import GraphView
from converters.layout_table import CHANNEL_LAST_TYPES
from gcverify.models import ModelRegistry
from test_layout import check_layout_conversion

REGISTRY = ModelRegistry.with_zoo()


@pytest.mark.parametrize("name", REGISTRY.default_names())
def test_zoo_network_channel_last(name):
    model = REGISTRY.build(name, seed=3)
    tol = {"atol": 1e-5, "rtol": 1e-4, **model.tolerance_for("channel_last")}
    convertible = sum(n for t, n in GraphView(model.outputs, model.params).histogram().items()
                      if t in CHANNEL_LAST_TYPES)
    converted, result = check_layout_conversion(model.inputs, model.outputs, model.input_data,
                                                model.params, **tol)
    now_channel_last = [f for f in GraphView(converted, {}).functions if f.info.args.get("channel_last")]
    assert convertible > 0 and len(now_channel_last) == convertible
    assert result.counts["converted"] == convertible
    assert [tuple(o.shape) for o in converted] == [tuple(o.shape) for o in model.outputs]
