"""What a quantizing converter declares it does, as data for the verifier to check.

:mod:`gcverify.verify.quant_check` checks a converted graph against these specs and
:mod:`gcverify.verify.quant_reference` builds the fake-quantized reference they describe.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from .expectations import INNER_PRODUCT

__all__ = ["FixedPointSpec", "LinearQuantSpec"]

@dataclass(frozen=True)
class FixedPointSpec:
    """Fixed-point weights and activations as a converter declares them.

    Weights (and biases) of ``weight_functions``: ``q = sign(w) floor(|w| / delta + 1/2) delta``
    clipped to ``[-L delta, L delta]``, ``L = 2^(bits-1) - 1``; ``delta`` given, or the smallest
    power of two with ``L delta >= max|w|`` (per tensor, or per output channel with
    ``per_channel``). Activations of ``activation_functions``: their outputs on the grid of
    ``activation_delta`` with ``activation_bits`` (unsigned, ``[0, (2^bits - 1) delta]``, after
    the functions in ``unsigned``). ``None`` bits: that part is left float.
    """

    weight_bits: Optional[int] = 8
    weight_delta: Optional[float] = None
    per_channel: bool = False
    quantize_bias: bool = True
    bias_bits: Optional[int] = None
    bias_delta: Optional[float] = None
    weight_functions: Tuple[str, ...] = INNER_PRODUCT
    activation_bits: Optional[int] = 16
    activation_delta: float = 2.0 ** -4
    activation_functions: Tuple[str, ...] = ()
    unsigned: Tuple[str, ...] = ("ReLU", "ReLU6", "Sigmoid", "HardSigmoid", "SoftPlus")

    def describe(self):
        parts = []
        if self.weight_bits:
            parts.append("{}-bit weights ({}{})".format(
                self.weight_bits, "delta {:g}".format(self.weight_delta) if self.weight_delta else
                "power-of-two step", ", per channel" if self.per_channel else ""))
        if self.activation_bits and self.activation_functions:
            parts.append("{}-bit activations (delta {:g})".format(self.activation_bits, self.activation_delta))
        return " and ".join(parts) or "nothing quantized"


@dataclass(frozen=True)
class LinearQuantSpec:
    """Quantize/dequantize (QDQ) of the inputs and weights of ``functions``:
    ``x' = (clip(round(x / s) + z, qmin, qmax) - z) s``, rounding half away from zero.
    Symmetric: ``z = 0``, ``s = max|range| / (2^(bits-1) - 1)`` over ``[-qmax, qmax]``;
    asymmetric: the range ``[min(lo, 0), max(hi, 0)]`` onto ``[-2^(bits-1), 2^(bits-1) - 1]``,
    ``z = round(qmin - lo / s)``. Input ranges: min and max of the input over the model's
    data (one calibration forward); weight ranges per output channel with ``per_channel``."""

    bits: int = 8
    symmetric: bool = True
    per_channel: bool = True
    functions: Tuple[str, ...] = INNER_PRODUCT

    def describe(self):
        return "int{} {} QDQ{}".format(self.bits, "symmetric" if self.symmetric else "asymmetric",
                                       ", weights per channel" if self.per_channel else "")
