"""Layout behaviour of each NNabla function, as data (TVM ConvertLayout's op attributes).

``LAYOUT_RULES[type_name]`` is a rule from :mod:`.layout_rules`; a function without an entry
is fenced (:data:`~.layout_rules.FENCE`): it sees its original layout through transposes.
Adding support for a function is adding a line here, never a branch in the pass.

Layout-deciding entries come from NNabla 1.39's function definitions: Convolution,
Deconvolution, Max/Average/SumPooling, Unpooling and Interpolate take ``channel_last``;
DepthwiseConvolution/-Deconvolution do not (their channel-last form is a grouped
Convolution/Deconvolution); GlobalAveragePooling and the other normalizations have no channel-last form
and are fenced, as is a Reshape that does more than add or remove size-1 axes.
"""
from . import layout_rules as R

__all__ = ["LAYOUT_RULES", "rule_for", "CHANNEL_LAST_TYPES", "LAYOUT_DECIDING_TYPES"]

_AGNOSTIC_UNARY = """
    Identity ReLU ReLU6 LeakyReLU ELU SELU CELU GELU Mish Swish Sigmoid Tanh TanhShrink
    HardSigmoid HardTanh LogSigmoid SoftPlus SoftSign Sign Abs Exp Log Round Ceil Floor Erf
    Sin Cos Tan Sinh Cosh ASin ACos ATan ASinh ACosh ATanh Sinc IsNaN IsInf ResetNaN ResetInf
    LogicalNot Dropout BinarySigmoid BinaryTanh FixedPointQuantize Pow2Quantize
    AddScalar MulScalar PowScalar RSubScalar RDivScalar RPowScalar MaximumScalar MinimumScalar
    EqualScalar NotEqualScalar GreaterScalar GreaterEqualScalar LessScalar LessEqualScalar
    LogicalAndScalar LogicalOrScalar LogicalXorScalar
""".split()

_ELEMENTWISE = """
    Add2 Sub2 Mul2 Div2 Pow2 Maximum2 Minimum2 Mod2 ATan2 BcAdd2 AddN MulN Where
    Equal NotEqual Greater GreaterEqual Less LessEqual LogicalAnd LogicalOr LogicalXor
""".split()

LAYOUT_RULES = {name: R.Agnostic() for name in _AGNOSTIC_UNARY}
LAYOUT_RULES.update({name: R.Elementwise() for name in _ELEMENTWISE})
LAYOUT_RULES.update({
    # adjustable: axis arguments, slices, pads, weights rows, statistics
    "Softmax": R.Axis("axis"),
    "LogSoftmax": R.Axis("axis"),
    "CumSum": R.Axis("axis"),
    "CumProd": R.Axis("axis"),
    "Sort": R.Axis("axis"),
    "Concatenate": R.Axis("axis", aligned=True),
    "Flip": R.Axes("axes"),
    "Sum": R.Reduce(),
    "Mean": R.Reduce(),
    "Max": R.Reduce(),
    "Min": R.Reduce(),
    "Prod": R.Reduce(),
    "Split": R.Split(),
    "Stack": R.Stack(),
    "Slice": R.Slice(),
    "Pad": R.Pad(),
    "Transpose": R.Transpose(),
    "Reshape": R.Reshape(),
    "BatchNormalization": R.BatchNorm(),
    "FusedBatchNormalization": R.BatchNorm(),
    "PReLU": R.PReLU(),
    "Affine": R.Affine(),
    # layout-deciding
    "Convolution": R.Decides("conv", weighted=True),
    "Deconvolution": R.Decides("conv", weighted=True),
    "DepthwiseConvolution": R.Depthwise(),
    "DepthwiseDeconvolution": R.Depthwise(),
    "MaxPooling": R.Decides("kernel"),
    "AveragePooling": R.Decides("kernel"),
    "SumPooling": R.Decides("kernel"),
    "Unpooling": R.Decides("kernel"),
    "Interpolate": R.Decides("output_size"),
})

# Functions that have a channel-last spelling (what "every supported function converted" means).
CHANNEL_LAST_TYPES = tuple(k for k, v in LAYOUT_RULES.items() if isinstance(v, R.Decides))
# Functions whose data input has a layout (an input reaching one of them is a spatial input).
LAYOUT_DECIDING_TYPES = CHANNEL_LAST_TYPES + tuple(k for k, v in LAYOUT_RULES.items()
                                                   if isinstance(v, R.Depthwise))


def rule_for(type_name):
    return LAYOUT_RULES.get(type_name, R.FENCE)
