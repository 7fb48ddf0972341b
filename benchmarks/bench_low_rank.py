"""Low rank of ResNet-50 at full rank: the factors from a full SVD (before) and from the
Gram matrix's ``eigh`` (now, ``converters.quant_math.truncated_svd``), side by side.

Both are timed in paired rounds by gcverify's timing helper (CPU time, ratio with its 95 %
interval): first the factorization of all 54 weight matrices alone, then the whole
``LowRankConverter(energy=1.0, skip_if_larger=False)`` conversion (the matrix row), whose
CPU time with the Gram factors has the target <= 3 s. "Before" runs the same conversion
with ``truncated_svd`` swapped, for the call only, for the previous full-SVD version. The
factors are checked to agree: singular values, and the product reproducing every weight.
"""
import os
import sys
from unittest import mock

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import converters as GC  # noqa: E402
from bench_common import family_main, show_ratio, show_value, timed  # noqa: E402
from converters import quant_math  # noqa: E402
from converters.graph_view import GraphView  # noqa: E402
from gcverify.zoo import build_zoo_model  # noqa: E402

__all__ = ["main"]


def full_svd_factors(matrix, rank=None, energy=None):
    """The previous ``truncated_svd``: a complete float64 SVD (the reference)."""
    m = np.asarray(matrix, dtype=np.float64)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    r = quant_math.choose_rank(s, rank, energy)
    root = np.sqrt(s[:r])
    return (u[:, :r] * root).astype(np.float32), (root[:, None] * vt[:r]).astype(np.float32), s


def weight_matrices(model):
    view = GraphView(model.outputs, model.params)
    return [f.inputs[1].d.reshape(f.inputs[1].shape[0], -1) for f in view.functions
            if f.info.type_name in GC.low_rank.LOW_RANK_TYPES]


def agreement(matrices):
    s_diff = rebuilt = 0.0
    for m in matrices:
        _, _, s_ref = full_svd_factors(m, energy=1.0)
        a, b, s = quant_math.truncated_svd(m, energy=1.0)
        s_diff = max(s_diff, float(np.abs(s - s_ref).max() / s_ref[0]))
        rebuilt = max(rebuilt, float(np.abs(a.astype(np.float64) @ b - m).max() / np.abs(m).max()))
    print("  {} matrices: singular values agree to {:.1e} of the largest; the float32 factors "
          "reproduce every weight to {:.1e} of its largest".format(len(matrices), s_diff, rebuilt))


def run(sections, rounds, results):
    model = build_zoo_model("resnet50")
    matrices = weight_matrices(model)

    print("\n## factorizing ResNet-50's weights: full SVD (before) / Gram + eigh (now)")
    agreement(matrices)
    show_ratio({}, "factorization of all layers, speed-up",
               timed(lambda: [full_svd_factors(m, energy=1.0) for m in matrices],
                     lambda: [quant_math.truncated_svd(m, energy=1.0) for m in matrices],
                     rounds), names=("svd", "gram"))

    print("\n## LowRankConverter(energy=1.0) on ResNet-50 (every layer decomposed)")

    def convert():
        converter = GC.LowRankConverter(energy=1.0, skip_if_larger=False, params=model.params)
        converter.convert(model.outputs[0])
        assert converter.last_result.counts == {"decomposed": 54}

    def convert_with_full_svd():
        with mock.patch.object(quant_math, "truncated_svd", full_svd_factors):
            convert()
    r = timed(convert_with_full_svd, convert, rounds)
    show_ratio({}, "low_rank conversion, speed-up", r, names=("before", "now"))
    show_value(results, "low_rank on ResNet-50, CPU seconds", r.time_converted, 3.0,
               detail=" (before: {:.2f} s)".format(r.time_original))


def main(argv=None):
    # 6 rounds: the fewest with a 95 % interval (each round converts twice, ~10 s)
    return family_main(argv, __doc__, run, rounds=6)


if __name__ == "__main__":
    sys.exit(main())
