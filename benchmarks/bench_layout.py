"""Channel-last conversion of ResNet-50: ours vs NNabla's ``ChannelLastModifier``, side by side.

Both converters run on the same graph in one process, timed in paired alternating rounds by
gcverify's timing helper (``bench_common.timed``: CPU time, ratio with its 95 % interval);
the printed ratio ours/NNabla is the target (<= 0.12).

NNabla 1.39's modifier crashes when the first function of the graph is a convolution (our
ResNet-50's stem is one): that is tried and reported, and the timing comparison then runs
on ResNet-50 behind a leading ReLU, where it works. NNabla's modifier writes ``W_cl``
parameters into the current parameter scope, so it runs inside a throwaway scope holding
the model's parameters; the global scope is checked unchanged at the end.
"""
import os
import sys
import traceback
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import converters as GC  # noqa: E402
from bench_common import family_main, show_ratio, timed  # noqa: E402
from converters.graph_view import GraphView  # noqa: E402
from gcverify.zoo.seeding import randomize_parameters  # noqa: E402
from gcverify.zoo.resnet import resnet50  # noqa: E402

__all__ = ["main"]


def build(leading_relu, batch=1):
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        x = nn.Variable((batch, 3, 224, 224))
        y = resnet50(F.relu(x) if leading_relu else x, test=True)
        params = nn.get_parameters(grad_only=False)
    randomize_parameters([y], params, seed=0)
    return x, y, params


def ours(x, y, params):
    modifier = GC.ChannelLastModifier([x])
    return GC.GraphConverter([modifier], params=params).convert(y), modifier.inputs_cl[0]


def nnabla_converts(x, y, params):
    import nnabla.experimental.graph_converters as NGC
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        for name, v in params.items():
            nn.parameter.set_parameter(name, v)
        modifier = NGC.ChannelLastModifier([x])
        return NGC.GraphConverter([modifier]).convert(y), modifier.inputs_cl[0]


def count_channel_last(y):
    types = GraphView(y, {}).functions
    cl = sum(1 for f in types if f.info.args.get("channel_last"))
    cf = sum(1 for f in types if f.info.args.get("channel_last") is False)
    return cl, cf


def run(sections, rounds, results):
    print("1. NNabla's ChannelLastModifier on ResNet-50 whose first function is the stem conv:")
    x, y, params = build(leading_relu=False)
    try:
        nnabla_converts(x, y, params)
        print("   converted without error")
    except Exception as e:  # what NNabla raises is the point of this line
        frame = traceback.extract_tb(e.__traceback__)[-1]
        print("   CRASHES: {}: {} ({}:{})".format(type(e).__name__, str(e).splitlines()[0][:100],
                                                   os.path.basename(frame.filename), frame.lineno))
    yy, _ = ours(x, y, params)
    print("   ours: converted; channel-last/channel-first conv+pool functions: {}/{}".format(
        *count_channel_last(yy)))

    print("2. Conversion time on ResNet-50 behind a leading ReLU (where NNabla's works):")
    x, y, params = build(leading_relu=True)
    for name, (yy, _) in (("ours", ours(x, y, params)), ("nnabla", nnabla_converts(x, y, params))):
        print("   {:7s} channel-last/channel-first conv+pool: {}/{}".format(
            name, *count_channel_last(yy)))
    r = timed(lambda: nnabla_converts(x, y, params), lambda: ours(x, y, params), rounds)
    show_ratio(results, "channel-last time, ours / NNabla", r, target=0.12, at_most=True,
               invert=True, names=("nnabla", "ours"))


def main(argv=None):
    return family_main(argv, __doc__, run)


if __name__ == "__main__":
    sys.exit(main())
