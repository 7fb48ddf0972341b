"""BN folding and linearization vs NNabla's built-ins, side by side on ResNet-50.

Prints ratios measured in one run with the repetitions interleaved round-robin; a ratio is
the median over rounds of the per-round ratio, so load from other processes hits both sides
of each pair alike. Times are this process's CPU time (NNabla's CPU backend runs one
thread), which leaves out time spent waiting for a core on a loaded machine:

- linear forms: candidate one-op ``c0 * x + c1`` layers against one BN (why a 1x1
  DepthwiseConvolution is the linearized form);
- conversion time of BN folding: ours / NNabla's ``BatchNormalizationFoldingModifier``
  (target <= 0.2);
- extra peak memory of folding / bytes of folded weights (target <= 1.2), measured as the
  growth of peak RSS in a forked child per measurement;
- forward speed: folded vs the same ResNet-50 built without BN (>= 0.98), linearized vs
  the original (>= 1.0), and NNabla's self-folded form for reference;
- scaling: converting a 10x deeper conv-BN-ReLU chain (<= 11x).

NNabla's modifiers write into the current parameter scope, so they run inside a throwaway
scope holding the model's parameters; the global scope is checked unchanged at the end.
"""
import argparse
import ctypes
import gc
import json
import os
import statistics
import sys
import time
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
from nnabla_ext.cpu import clear_memory_cache

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import converters as GC  # noqa: E402
from converters.graph_view import all_parameters  # noqa: E402
from gcverify.models import ModelRegistry  # noqa: E402
from gcverify.zoo.init import randomize_parameters  # noqa: E402
from gcverify.zoo.resnet import EXPANSION, STAGES  # noqa: E402

__all__ = ["main"]


# --- networks ----------------------------------------------------------------------------

def ideal_resnet50(image):
    """ResNet-50 as if BN had been folded by hand: every conv has a bias, there is no BN."""
    def conv(h, maps, kernel, stride, name, relu=True):
        h = PF.convolution(h, maps, kernel, pad=tuple(k // 2 for k in kernel), stride=stride,
                           name=name)
        return F.relu(h) if relu else h

    h = F.max_pooling(conv(image, 64, (7, 7), (2, 2), "stem"), (3, 3), (2, 2), pad=(1, 1))
    for s, (width, blocks, stride) in enumerate(STAGES):
        for b in range(blocks):
            name, st = "s{}b{}".format(s, b), (stride, stride) if b == 0 else (1, 1)
            r = conv(h, width, (1, 1), (1, 1), name + "/1")
            r = conv(r, width, (3, 3), st, name + "/2")
            r = conv(r, width * EXPANSION, (1, 1), (1, 1), name + "/3", relu=False)
            if b == 0:
                h = conv(h, width * EXPANSION, (1, 1), st, name + "/sc", relu=False)
            h = F.relu(F.add2(r, h))
    return PF.affine(F.average_pooling(h, h.shape[2:]), 1000, name="fc")


def build(builder, shape, seed=0):
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        x = nn.Variable(shape)
        y = builder(x)
        params = nn.get_parameters(grad_only=False)
    randomize_parameters([y], params, seed=seed)
    x.d = np.random.RandomState(seed).uniform(-1, 1, shape)
    return x, y, params


def chain(depth):
    def net(x):
        h = x
        for i in range(depth):
            h = F.relu(PF.batch_normalization(
                PF.convolution(h, 8, (3, 3), pad=(1, 1), name="c{}".format(i)),
                batch_stat=False, name="bn{}".format(i)))
        return h
    return net


# --- conversions -------------------------------------------------------------------------

def ours(y, params, modifier=GC.BatchNormalizationFoldingModifier):
    converter = GC.GraphConverter([modifier()], params=params)
    return converter.convert(y), converter.last_result


def nnabla_converts(y, params, self_folding=False):
    """NNabla's modifier on a throwaway scope holding the model's parameters."""
    import nnabla.experimental.graph_converters as NGC
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        for name, v in params.items():
            nn.parameter.set_parameter(name, v)
        modifier = (NGC.BatchNormalizationSelfFoldingModifier if self_folding
                    else NGC.BatchNormalizationFoldingModifier)()
        return NGC.GraphConverter([modifier]).convert(y)


def _structure(y):
    """A graph as data, order-free: each function's type, args and input shapes."""
    return sorted(str((f.info.type_name, f.info.args, [v.shape for v in f.inputs]))
                  for f in GC.GraphView(y, {}).functions)


def interleaved(candidates, reps):
    """CPU seconds of each callable per round, repetitions interleaved round-robin.

    Process CPU time, not wall time: NNabla's CPU kernels are single-threaded here, so CPU
    time is the work done and leaves out the time other processes hold the cores.
    """
    times = {k: [] for k in candidates}
    for fn in candidates.values():  # warm-up
        fn()
    order, rng = list(candidates), np.random.RandomState(0)
    for _ in range(reps):
        rng.shuffle(order)  # no candidate always runs first (or right after the same one)
        for k in order:
            fn = candidates[k]
            gc.collect()
            t = time.process_time()
            fn()
            times[k].append(time.process_time() - t)
    return times


def medians(times):
    return {k: statistics.median(v) for k, v in times.items()}


def paired(times, num, den):
    """Median over rounds of ``times[num] / times[den]``: each round's pair saw the same load."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no {} in /proc/self/status".format(field))


def peak_extra_bytes(fn):
    """Growth of peak RSS while ``fn()`` runs, measured in a forked child (fresh allocator)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: reset the high-water mark, run, report
        status = 1
        try:
            os.close(read)
            gc.collect()
            # Blocks NNabla cached in the parent (e.g. while seeding weights) would be reused
            # without raising RSS: hand them back first so every allocation shows.
            clear_memory_cache()
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # likewise free heap pages glibc keeps
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            base = _status_kb("VmHWM")
            keep = fn()  # noqa: F841 (the result stays alive while the peak is read)
            os.write(write, json.dumps((_status_kb("VmHWM") - base) * 1024).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


# --- sections ----------------------------------------------------------------------------

def linear_candidates(reps):
    print("\n## one-op c0*x + c1 candidates (per layer, ms; ratio = BN time / candidate time)")
    rows = []
    for shape in [(1, 64, 112, 112), (1, 256, 56, 56), (1, 2048, 7, 7)]:
        c = shape[1]
        x = nn.Variable.from_numpy_array(np.random.randn(*shape).astype(np.float32))

        def p(v, s=(1, c, 1, 1)):
            return nn.Variable.from_numpy_array(np.full(s, v, np.float32))
        ys = {
            "BatchNormalization": F.batch_normalization(x, p(.1), p(1.2), p(.3), p(2.),
                                                        batch_stat=False),
            "Mul2+Add2 (NNabla)": F.add2(F.mul2(x, p(1.2)), p(.1)),
            "BN mean0 var1 eps0": F.batch_normalization(x, p(.1), p(1.2), p(0.), p(1.),
                                                        eps=0.0, batch_stat=False),
            "Conv 1x1 group=C": F.convolution(x, p(1.2, (c, 1, 1, 1)), p(.1, (c,)), group=c),
            "DepthwiseConv 1x1": F.depthwise_convolution(x, p(1.2, (c, 1, 1)), p(.1, (c,))),
        }
        times = interleaved({k: y.forward for k, y in ys.items()}, reps)
        for k, v in medians(times).items():
            rows.append((str(shape), k, v * 1e3, paired(times, "BatchNormalization", k)))
    for r in rows:
        print("  {:<18} {:<20} {:8.3f} ms  {:5.2f}x".format(*r))


def conversion(model, reps, results):
    print("\n## conversion time of BN folding on ResNet-50 (median of {})".format(reps))
    y, params = model.outputs[0], model.params
    times = interleaved({"ours": lambda: ours(y, params),
                         "nnabla": lambda: nnabla_converts(y, params)}, reps)
    t, ratio = medians(times), paired(times, "ours", "nnabla")
    print("  ours {:.4f} s   nnabla {:.4f} s   ratio {:.3f}  (target <= 0.2)".format(
        t["ours"], t["nnabla"], ratio))
    results["conversion time ratio"] = (ratio, ratio <= 0.2)


def memory(model, reps, results):
    print("\n## extra peak memory of folding (forked child per measurement, median of {})"
          .format(reps))
    y, params = model.outputs[0], model.params
    extra = {"ours": [], "nnabla": []}
    for _ in range(reps):
        extra["ours"].append(peak_extra_bytes(lambda: ours(y, params)))
        extra["nnabla"].append(peak_extra_bytes(lambda: nnabla_converts(y, params)))
    # Only now in this process: memory NNabla caches after a conversion would be reused by
    # the forked children without raising their RSS.
    folded = sum(v.size * 4 for v in ours(y, params)[1].new_parameters.values())
    mb = 1 << 20
    for k, v in extra.items():
        m = statistics.median(v)
        print("  {:<6} +{:7.1f} MB for {:.1f} MB of folded weights: {:.2f}x".format(
            k, m / mb, folded / mb, m / folded))
    ratio = statistics.median(extra["ours"]) / folded
    results["extra memory / folded weights"] = (ratio, ratio <= 1.2)


def forward(model, reps, results, instances=3):
    print("\n## forward on CPU, ResNet-50 batch 1 ({} instances of each graph, median of {} "
          "rounds)".format(instances, reps))
    # Where a graph's buffers land changes its speed by up to ~10% here, for the whole run:
    # each kind is built several times and its per-round time is the mean over instances.
    models = [model] + [ModelRegistry.with_zoo().build("resnet50") for _ in range(instances - 1)]
    graphs = {}
    for i, m in enumerate(models):
        y, params = m.outputs[0], m.params
        m.feed()
        graphs["original", i] = y
        graphs["folded", i] = ours(y, params)[0]
        graphs["linearized", i] = ours(y, params, GC.BatchNormalizationSelfFoldingModifier)[0]
        graphs["ideal (no BN)", i] = build(ideal_resnet50, m.inputs[0].shape, seed=i)[1]
    graphs["NNabla self-folded", 0] = nnabla_converts(model.outputs[0], model.params,
                                                      self_folding=True)
    same = _structure(graphs["folded", 0]) == _structure(graphs["ideal (no BN)", 0])
    print("  folded graph has the ideal network's functions, args and shapes: {}".format(same))
    raw = interleaved({k: (lambda g=g: g.forward(clear_no_need_grad=True))
                       for k, g in graphs.items()}, reps)
    times = {}
    for (kind, _), v in raw.items():
        times.setdefault(kind, []).append(v)
    times = {k: [statistics.mean(r) for r in zip(*v)] for k, v in times.items()}
    for k, v in medians(times).items():
        print("  {:<20} {:7.1f} ms".format(k, v * 1e3))
    folded_speed = paired(times, "ideal (no BN)", "folded")
    linear_speed = paired(times, "original", "linearized")
    print("  folded speed vs ideal      {:.3f}x (target >= 0.98)".format(folded_speed))
    print("  linearized vs original     {:.3f}x (target >= 1.0)".format(linear_speed))
    print("  NNabla self-folded vs orig {:.3f}x".format(
        paired(times, "original", "NNabla self-folded")))
    spread = [raw["folded", i] for i in range(instances)]
    print("  noise: identical folded instances, slowest/fastest median {:.3f}x".format(
        max(map(statistics.median, spread)) / min(map(statistics.median, spread))))
    results["folded speed vs ideal"] = (folded_speed, folded_speed >= 0.98)
    results["linearized speed vs original"] = (linear_speed, linear_speed >= 1.0)


def scaling(reps, results, depth=30):
    print("\n## conversion time vs depth (conv-BN-ReLU chain, median of {})".format(reps))
    nets = {d: build(chain(d), (1, 8, 16, 16)) for d in (depth, 10 * depth)}
    times = interleaved({d: (lambda n=n: ours(n[1], n[2])) for d, n in nets.items()}, reps)
    t, ratio = medians(times), paired(times, 10 * depth, depth)
    print("  depth {}: {:.4f} s   depth {}: {:.4f} s   ratio {:.2f}  (target <= 11)".format(
        depth, t[depth], 10 * depth, t[10 * depth], ratio))
    results["10x deeper chain cost"] = (ratio, ratio <= 11)


SECTIONS = ("candidates", "conversion", "memory", "forward", "scaling")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    parser.add_argument("--section", choices=SECTIONS, action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args, _ = parser.parse_known_args(argv)
    sections = args.section or SECTIONS
    before = {k: id(v) for k, v in all_parameters().items()}
    model = ModelRegistry.with_zoo().build("resnet50")
    results = {}
    # Memory first: forked children must start from an allocator no conversion has warmed.
    if "memory" in sections:
        memory(model, args.reps, results)
    if "candidates" in sections:
        linear_candidates(args.reps)
    if "conversion" in sections:
        conversion(model, args.reps, results)
    if "forward" in sections:
        forward(model, args.reps, results)
    if "scaling" in sections:
        scaling(args.reps, results)
    clean = {k: id(v) for k, v in all_parameters().items()} == before
    print("\n## summary")
    for k, (value, ok) in results.items():
        print("  {:<32} {:8.3f}  {}".format(k, value, "met" if ok else "MISSED"))
    print("  global parameter scope unchanged: {}".format(clean))
    missed = not all(ok for _, ok in results.values())
    return 1 if not clean or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
