"""What a low-rank converter declares it does, as data for the verifier to check
(:mod:`gcverify.verify.low_rank_check` judges a conversion against it with its own SVD)."""
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["LowRankSpec", "LOW_RANK_FUNCTIONS"]

LOW_RANK_FUNCTIONS = ("Affine", "Convolution")


@dataclass(frozen=True)
class LowRankSpec:
    """Each ``functions`` layer whose weight is a parameter (Affine ``(I, *O)`` as an I x O
    matrix, an ungrouped channel-first Convolution ``(O, C, *k)`` as O x Ck) is replaced by two
    layers whose weights multiply to the best rank-r approximation of that matrix: ``rank``
    singular values (capped at the full rank), or the fewest whose share of ``sum s_i^2``
    reaches ``energy``. With ``skip_if_larger`` a layer whose two factors would hold as many
    weights as it does (``r (m + n) >= m n``) stays whole. Eckart-Young bounds the error of
    the split: ``||M - A B||_F = sqrt(sum_{i >= r} s_i^2)`` and ``||M - A B||_2 = s_r``."""

    rank: Optional[int] = None
    energy: Optional[float] = None
    functions: Tuple[str, ...] = LOW_RANK_FUNCTIONS
    skip_if_larger: bool = True

    def __post_init__(self):
        if (self.rank is None) == (self.energy is None):
            raise ValueError("a LowRankSpec gives exactly one of rank= or energy=")

    def describe(self):
        kept = "rank {}".format(self.rank) if self.rank is not None else "energy {:g}".format(self.energy)
        return "low rank ({}{})".format(kept, ", layers that save nothing kept" if self.skip_if_larger else "")
