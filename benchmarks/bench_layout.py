"""Channel-last conversion of ResNet-50: ours vs NNabla's ``ChannelLastModifier``, side by side.

Both converters run on the same graph in one process with repetitions interleaved
(medians), so load from other processes hits both alike; the printed ratio ours/NNabla is
the target (<= 0.2).

NNabla 1.39's modifier crashes when the first function of the graph is a convolution (our
ResNet-50's stem is one): that is tried and reported, and the timing comparison then runs
on ResNet-50 behind a leading ReLU, where it works. NNabla's modifier writes ``W_cl``
parameters into the current parameter scope, so it runs inside a throwaway scope holding
the model's parameters; the global scope is checked unchanged at the end.
"""
import argparse
import gc
import os
import statistics
import sys
import time
import traceback
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import converters as GC  # noqa: E402
from converters.graph_view import GraphView, all_parameters  # noqa: E402
from gcverify.zoo.init import randomize_parameters  # noqa: E402
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


def interleaved(candidates, reps):
    times = {k: [] for k in candidates}
    for fn in candidates.values():  # warm-up
        fn()
    for _ in range(reps):
        for k, fn in candidates.items():
            gc.collect()
            t = time.perf_counter()
            result = fn()
            times[k].append(time.perf_counter() - t)
            del result  # freeing the converted graph is not part of converting it
    return {k: statistics.median(v) for k, v in times.items()}


def count_channel_last(y):
    types = GraphView(y, {}).functions
    cl = sum(1 for f in types if f.info.args.get("channel_last"))
    cf = sum(1 for f in types if f.info.args.get("channel_last") is False)
    return cl, cf


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    before = set(all_parameters())

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

    print("2. Conversion time on ResNet-50 behind a leading ReLU (where NNabla's works), "
          "median of {} interleaved runs:".format(args.reps))
    x, y, params = build(leading_relu=True)
    times = interleaved({"ours": lambda: ours(x, y, params),
                         "nnabla": lambda: nnabla_converts(x, y, params)}, args.reps)
    for name, (yy, _) in (("ours", ours(x, y, params)), ("nnabla", nnabla_converts(x, y, params))):
        print("   {:7s} {:8.1f} ms   channel-last/channel-first conv+pool: {}/{}".format(
            name, times[name] * 1e3, *count_channel_last(yy)))
    ratio = times["ours"] / times["nnabla"]
    print("   ratio ours/nnabla = {:.3f} (target <= 0.2: {})".format(
        ratio, "met" if ratio <= 0.2 else "NOT met"))

    changed = set(all_parameters()) ^ before
    print("global parameter scope unchanged: {}".format(not changed))
    return 0 if not changed else 1


if __name__ == "__main__":
    sys.exit(main())
