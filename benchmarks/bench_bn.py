"""BN folding and linearization vs NNabla's built-ins, side by side on ResNet-50.

Every timed figure is a paired comparison through gcverify's timing helper
(``bench_common.timed``): alternating rounds, CPU time (NNabla's CPU backend runs one
thread, so CPU time is the work and leaves out waiting for a core), the ratio with its 95 %
interval:

- linear forms: candidate one-op ``c0 * x + c1`` layers against one BN (why a 1x1
  DepthwiseConvolution is the linearized form);
- conversion time of BN folding: ours / NNabla's ``BatchNormalizationFoldingModifier``
  (target <= 0.12);
- extra peak memory of folding / bytes of folded weights (target <= 1.1), measured as the
  growth of peak RSS in a forked child per measurement;
- forward speed: folded vs the same ResNet-50 built without BN (>= 0.98), linearized vs
  the original (>= 1.0), and NNabla's self-folded form for reference.

NNabla's modifiers write into the current parameter scope, so they run inside a throwaway
scope holding the model's parameters; the global scope is checked unchanged at the end.
Conversion time against depth is in bench_rebuild.py.
"""
import ctypes
import gc
import json
import os
import statistics
import sys
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
from nnabla_ext.cpu import clear_memory_cache

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import converters as GC  # noqa: E402
from bench_common import family_main, show_ratio, show_value, timed  # noqa: E402
from gcverify.zoo import build_zoo_model  # noqa: E402
from gcverify.zoo.seeding import randomize_parameters  # noqa: E402
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

def linear_candidates(rounds, results):
    print("\n## one-op c0*x + c1 candidates (per layer; ratio = BN time / candidate time)")
    for shape in [(1, 64, 112, 112), (1, 256, 56, 56), (1, 2048, 7, 7)]:
        c = shape[1]
        x = nn.Variable.from_numpy_array(np.random.randn(*shape).astype(np.float32))

        def p(v, s=(1, c, 1, 1)):
            return nn.Variable.from_numpy_array(np.full(s, v, np.float32))
        bn = F.batch_normalization(x, p(.1), p(1.2), p(.3), p(2.), batch_stat=False)
        candidates = {
            "Mul2+Add2 (NNabla)": F.add2(F.mul2(x, p(1.2)), p(.1)),
            "BN mean0 var1 eps0": F.batch_normalization(x, p(.1), p(1.2), p(0.), p(1.),
                                                        eps=0.0, batch_stat=False),
            "Conv 1x1 group=C": F.convolution(x, p(1.2, (c, 1, 1, 1)), p(.1, (c,)), group=c),
            "DepthwiseConv 1x1": F.depthwise_convolution(x, p(1.2, (c, 1, 1)), p(.1, (c,))),
        }
        for name, y in candidates.items():
            r = timed(bn.forward, y.forward, rounds)
            show_ratio(results, "{} {}".format(shape[1:], name), r, names=("BN", "candidate"))


def conversion(model, rounds, results):
    print("\n## conversion time of BN folding on ResNet-50 (ours / NNabla's)")
    y, params = model.outputs[0], model.params
    r = timed(lambda: nnabla_converts(y, params), lambda: ours(y, params), rounds)
    show_ratio(results, "BN folding time, ours / NNabla", r, target=0.12, at_most=True,
               invert=True, names=("nnabla", "ours"))


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
    show_value(results, "extra memory / folded weights (ours)",
               statistics.median(extra["ours"]) / folded, 1.1)


def forward(model, rounds, results, instances=3):
    print("\n## forward on CPU, ResNet-50 batch 1 ({} instances of each graph per sample)"
          .format(instances))
    # Where a graph's buffers land changes its speed by up to ~10% here, for the whole run:
    # each kind is built several times and one sample runs every instance once.
    models = [model] + [build_zoo_model("resnet50") for _ in range(instances - 1)]
    graphs = {k: [] for k in ("original", "folded", "linearized", "ideal (no BN)")}
    for i, m in enumerate(models):
        y, params = m.outputs[0], m.params
        m.feed()
        graphs["original"].append(y)
        graphs["folded"].append(ours(y, params)[0])
        graphs["linearized"].append(ours(y, params, GC.BatchNormalizationSelfFoldingModifier)[0])
        graphs["ideal (no BN)"].append(build(ideal_resnet50, m.inputs[0].shape, seed=i)[1])
    graphs["NNabla self-folded"] = [nnabla_converts(model.outputs[0], model.params,
                                                    self_folding=True)]
    same = _structure(graphs["folded"][0]) == _structure(graphs["ideal (no BN)"][0])
    print("  folded graph has the ideal network's functions, args and shapes: {}".format(same))

    def run(kind):
        return lambda: [g.forward(clear_no_need_grad=True) for g in graphs[kind]]
    show_ratio(results, "folded speed vs ideal", timed(run("ideal (no BN)"), run("folded"),
                                                       rounds), target=0.98,
               names=("ideal", "folded"))
    show_ratio(results, "linearized speed vs original", timed(run("original"), run("linearized"),
                                                              rounds), target=1.0,
               names=("orig", "linear"))
    show_ratio({}, "NNabla self-folded vs original",
               timed(lambda: model.outputs[0].forward(clear_no_need_grad=True),
                     run("NNabla self-folded"), rounds), names=("orig", "nnabla"))


SECTIONS = ("candidates", "conversion", "memory", "forward")


def run(sections, rounds, results):
    model = build_zoo_model("resnet50")
    # Memory first: forked children must start from an allocator no conversion has warmed.
    if "memory" in sections:
        memory(model, 5, results)
    if "candidates" in sections:
        linear_candidates(rounds, {})
    if "conversion" in sections:
        conversion(model, rounds, results)
    if "forward" in sections:
        forward(model, rounds, results)


def main(argv=None):
    return family_main(argv, __doc__, run, SECTIONS)


if __name__ == "__main__":
    sys.exit(main())
