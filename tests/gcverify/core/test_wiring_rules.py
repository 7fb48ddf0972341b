"""Wiring rules judged on small graphs built here (no converter involved)."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

from converters.graph_view import GraphView
from gcverify.core.model import build_privately
from gcverify.core.wiring_rules import NoGradients, SharesParameters


def _shared_weight(x):
    h = PF.affine(x, 4, name="fc")
    return h


def _two_readers(stop_first, stop_second):
    """Two Affines reading one weight; each through a need_grad=False stand-in or directly."""
    x = nn.Variable((2, 4))
    y, params = build_privately(_shared_weight, x)
    w, b = params["fc/affine/W"], params["fc/affine/b"]
    stand_in = w.get_unlinked_variable(need_grad=False)
    b_off = b.get_unlinked_variable(need_grad=False)
    first = F.affine(x, stand_in if stop_first else w, b_off)
    second = F.affine(x, stand_in if stop_second else w, b_off)
    return GraphView([y], params).functions, GraphView([first + second], params).functions


def test_no_gradients_counts_a_parameter_apart_from_its_stand_in():
    # NNabla's == holds for a parameter and its unlinked stand-in (same memory): a graph that
    # stops the first reader only must still be seen reading a weight that needs a gradient
    before, after = _two_readers(stop_first=True, stop_second=False)
    passed, message = NoGradients().check(before, after)
    assert not passed and "1 of 3" in message, message
    before, after = _two_readers(stop_first=True, stop_second=True)
    passed, message = NoGradients().check(before, after)
    assert passed, message


def test_shares_parameters_accepts_stand_ins_of_the_originals():
    before, after = _two_readers(stop_first=True, stop_second=False)
    passed, message = SharesParameters().check(before, after)
    assert passed, message
