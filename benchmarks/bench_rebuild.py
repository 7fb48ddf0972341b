"""What rebuilding a graph costs in NNabla's Python layer, with and without our shortcuts.

``converters.fast_rebuild`` (used by every ``run_passes``) short-circuits NNabla's failing
implicit-relative imports and pauses the cyclic collector. Each figure here is a paired
comparison through gcverify's timing helper (CPU time, ratio with its 95 % interval):

- one function creation (``F.convolution``) and one ``Variable.d`` access, without / with
  the import shortcut, and what entering and leaving the shortcut costs;
- BN folding of ResNet-50 by ``rebuild`` without / with the import shortcut;
- conversion time against depth (conv-BN-ReLU chains of 100, 1000 and 5000 layers) with
  the collector paused and running: t(1000) / t(100) and t(5000) / t(1000), target <= 5.2
  (linear is 5) with the pause; and, for reference, with no collection at all.
"""
import os
import sys

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_bn import build  # noqa: E402
from bench_common import family_main, show_ratio, timed  # noqa: E402
from converters.bn_fold import FoldBatchNorm  # noqa: E402
from converters.fast_rebuild import fast_nnabla_imports, fast_rebuild, paused_gc  # noqa: E402
from converters.graph_view import GraphView  # noqa: E402
from converters.rewrite import rebuild  # noqa: E402
from gcverify.zoo import build_zoo_model  # noqa: E402

__all__ = ["main"]

PER_SAMPLE = 1000  # operations per call of a micro-benchmark's callable


def chain(depth):
    def net(x):
        h = x
        for i in range(depth):
            h = F.relu(PF.batch_normalization(
                PF.convolution(h, 8, (3, 3), pad=(1, 1), name="c{}".format(i)),
                batch_stat=False, name="bn{}".format(i)))
        return h
    return net


def _per_op(label, r):
    print("  {:<40} {:.2f} us -> {:.2f} us".format(
        label, r.time_original / PER_SAMPLE * 1e6, r.time_converted / PER_SAMPLE * 1e6))


def import_shortcut(rounds, results):
    print("\n## NNabla's failing imports: without / with the shortcut ({} ops per call)"
          .format(PER_SAMPLE))
    x, w = nn.Variable((1, 3, 8, 8)), nn.Variable((4, 3, 3, 3))
    w.d  # noqa: B018 (imports nnabla_ext.cpu, as any first .d does)

    def create():
        for _ in range(PER_SAMPLE):
            F.convolution(x, w)

    def read():
        for _ in range(PER_SAMPLE):
            w.d  # noqa: B018

    def shortcut(fn):
        def run():
            with fast_nnabla_imports():
                fn()
        return run

    def enter_leave():
        for _ in range(PER_SAMPLE):
            with fast_nnabla_imports():
                pass
    for label, fn in (("Convolution creation", create), ("Variable.d access", read)):
        r = timed(fn, shortcut(fn), rounds)
        show_ratio(results, label + ", speed-up", r, names=("without", "with"))
        _per_op(label + " per op", r)
    r = timed(enter_leave, lambda: [None for _ in range(PER_SAMPLE)], rounds)
    print("  {:<40} {:.2f} us per conversion (an empty loop: {:.2f} us)".format(
        "entering + leaving the shortcut", r.time_original / PER_SAMPLE * 1e6,
        r.time_converted / PER_SAMPLE * 1e6))


def resnet_rebuild(rounds, results):
    print("\n## BN folding of ResNet-50 by rebuild(): without / with the import shortcut")
    model = build_zoo_model("resnet50")
    y, params = model.outputs[0], model.params

    def fold(shortcut):
        def run():
            with shortcut():
                return rebuild(GraphView(y, params), FoldBatchNorm())
        return run
    show_ratio(results, "ResNet-50 BN folding, speed-up", timed(fold(paused_gc), fold(fast_rebuild),
                                                                rounds),
               names=("without", "with"))


def depth(rounds, results):
    print("\n## conversion time against depth (conv-BN-ReLU chains; ratio = deeper / shallower)")
    nets = {d: build(chain(d), (1, 8, 16, 16)) for d in (100, 1000, 5000)}

    def fold(d, shortcut):
        _, y, params = nets[d]

        def run():  # returns the result alive, as run_passes does when the block ends
            with shortcut():
                return rebuild(GraphView(y, params), FoldBatchNorm())
        return run
    for name, shortcut in (("collector paused", fast_rebuild),
                           ("collector running", fast_nnabla_imports)):
        paused = shortcut is fast_rebuild
        show_ratio(results if paused else {}, "depth 100 -> 1000, {}".format(name),
                   timed(fold(1000, shortcut), fold(100, shortcut), rounds),
                   names=("1000", " 100"))
        show_ratio(results if paused else {}, "depth 1000 -> 5000, {}".format(name),
                   timed(fold(5000, shortcut), fold(1000, shortcut), rounds),
                   target=5.2 if paused else None, at_most=True, names=("5000", "1000"))
    # Reference: no collection at all, not even the one young-generation pass that follows
    # a paused rebuild (it scans every object the new graph holds, once).
    with paused_gc():
        show_ratio({}, "depth 1000 -> 5000, collector off",
                   timed(fold(5000, fast_nnabla_imports), fold(1000, fast_nnabla_imports),
                         rounds), names=("5000", "1000"))


SECTIONS = ("imports", "resnet", "depth")


def run(sections, rounds, results):
    if "imports" in sections:
        import_shortcut(rounds, results)
    if "resnet" in sections:
        resnet_rebuild(rounds, results)
    if "depth" in sections:
        depth(min(rounds, 9), results)  # a 5000-layer conversion takes ~1 s


def main(argv=None):
    return family_main(argv, __doc__, run, SECTIONS)


if __name__ == "__main__":
    sys.exit(main())
