"""The operations the fuzzer draws from: one table entry per NNabla function kind.

Each entry knows four things, so the generator never has to ask NNabla whether a graph is
valid: how to ``sample`` arguments for given input shapes (None when it does not apply), the
``out_shape`` those arguments give (NNabla's own shape formulas; the builder asserts they
agree), the ``params`` it needs as ``(suffix, shape)`` pairs (equal lists mean a weight can be
shared), and how to ``build`` the function from inputs, arguments and parameters.

Arguments are plain JSON data (ints, floats, bools, lists), so a recipe replays exactly.
"""
from collections import namedtuple

import nnabla.functions as F
import numpy as np

__all__ = ["Op", "OPS", "ACTIVATIONS", "InvalidRecipe", "conv_out", "deconv_out", "pool_out"]


class InvalidRecipe(ValueError):
    """The recipe does not describe a valid graph (shapes, sharing or references disagree)."""


def _need(condition, message, *args):
    if not condition:
        raise InvalidRecipe(message.format(*args))


Op = namedtuple("Op", "sample out_shape params build arity")
# arity: 1 for unary ops; "pair" for two equal shapes; "concat" for shapes equal but on one axis.
# ``sample(rng, shape, options)`` gets GenOptions (max_channels, odd) as ``lim``.


# --- shape formulas (NNabla's) ---------------------------------------------------------
def conv_out(size, k, pad, stride, dil):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def deconv_out(size, k, pad, stride, dil, out_pad=0):
    return (size - 1) * stride - 2 * pad + dil * (k - 1) + 1 + out_pad


def pool_out(size, k, pad, stride, ignore_border):
    # NNabla's (measured): C++ division truncates toward zero; without ignore_border the
    # count does not depend on the kernel.
    if ignore_border:
        return int((size + 2 * pad - k) / stride) + 1
    return (size + pad + stride - 1) // stride


def _pick(rng, values):
    return values[rng.randint(len(values))]


def _window(rng, d, same):
    """Kernel, pad, stride, dilation per spatial dim; ``same`` keeps the size unchanged."""
    k, p, s, dl = [], [], [], []
    for _ in range(d):
        if same:
            kk, dd = _pick(rng, [1, 3, 3]), _pick(rng, [1, 1, 2])
            k.append(kk), dl.append(dd), s.append(1), p.append(dd * (kk - 1) // 2)
        else:
            kk = rng.randint(1, 4)
            k.append(kk), dl.append(rng.randint(1, 3)), s.append(rng.randint(1, 3))
            p.append(rng.randint(0, kk))
    return k, p, s, dl


# --- inner-product layers -------------------------------------------------------------
def _conv_sample(rng, shape, lim):
    if len(shape) < 3:
        return None
    c, d = shape[1], len(shape) - 2
    k, p, s, dl = _window(rng, d, same=rng.rand() < 0.5)
    kind = rng.rand()
    if kind < 0.2:  # depthwise as a grouped convolution
        group, out = c, c * rng.randint(1, 3)
    elif kind < 0.35 and c > 1:
        group = _pick(rng, [g for g in range(2, c + 1) if c % g == 0])
        out = group * rng.randint(1, max(2, lim.max_channels // group + 1))
    else:
        group, out = 1, rng.randint(1, lim.max_channels + 1)
    return dict(out=out, kernel=k, pad=p, stride=s, dilation=dl, group=group,
                bias=bool(rng.rand() < 0.6))


def _window_fits(a, shape, name):
    _need(len(shape) == len(a["kernel"]) + 2, "{} with a {}-D kernel on shape {}", name, len(a["kernel"]), shape)


def _conv_shape(a, shape):
    _window_fits(a, shape, "Convolution")
    _need(shape[1] % a["group"] == 0 and a["out"] % a["group"] == 0,
          "Convolution group {} does not divide {} -> {} channels", a["group"], shape[1], a["out"])
    sp = [conv_out(*t) for t in zip(shape[2:], a["kernel"], a["pad"], a["stride"], a["dilation"])]
    return (shape[0], a["out"]) + tuple(sp)


def _conv_params(a, shape):
    w = [("conv/W", (a["out"], shape[1] // a["group"]) + tuple(a["kernel"]))]
    return w + ([("conv/b", (a["out"],))] if a["bias"] else [])


def _conv_build(x, a, p):
    return F.convolution(x, p[0], p[1] if a["bias"] else None, pad=a["pad"], stride=a["stride"],
                         dilation=a["dilation"], group=a["group"])


def _deconv_sample(rng, shape, lim):
    if len(shape) < 3:
        return None
    c, d = shape[1], len(shape) - 2
    k, p, s, dl = _window(rng, d, same=rng.rand() < 0.4)
    group = _pick(rng, [1, 1, 1] + [g for g in range(2, c + 1) if c % g == 0])
    out = group * rng.randint(1, max(2, lim.max_channels // group + 1))
    out_pad = [rng.randint(0, ss) if rng.rand() < 0.3 else 0 for ss in s]  # NNabla: < stride
    return dict(out=out, kernel=k, pad=p, stride=s, dilation=dl, group=group, output_padding=out_pad,
                bias=bool(rng.rand() < 0.6))


def _deconv_shape(a, shape):
    _window_fits(a, shape, "Deconvolution")
    _need(shape[1] % a["group"] == 0 and a["out"] % a["group"] == 0,
          "Deconvolution group {} does not divide {} -> {} channels", a["group"], shape[1], a["out"])
    sp = [deconv_out(*t) for t in zip(shape[2:], a["kernel"], a["pad"], a["stride"],
                                       a["dilation"], a["output_padding"])]
    return (shape[0], a["out"]) + tuple(sp)


def _deconv_params(a, shape):
    w = [("deconv/W", (shape[1], a["out"] // a["group"]) + tuple(a["kernel"]))]
    return w + ([("deconv/b", (a["out"],))] if a["bias"] else [])


def _deconv_build(x, a, p):
    return F.deconvolution(x, p[0], p[1] if a["bias"] else None, pad=a["pad"], stride=a["stride"],
                           dilation=a["dilation"], group=a["group"],
                           output_padding=a["output_padding"])


def _dw_sample(rng, shape, lim, deconv=False):
    if len(shape) not in (3, 4):  # NNabla's depthwise kernels are 1D/2D only
        return None
    c, d = shape[1], len(shape) - 2
    k, p, s, dl = _window(rng, d, same=rng.rand() < 0.5)
    a = dict(kernel=k, pad=p, stride=s, dilation=dl, bias=bool(rng.rand() < 0.6))
    if deconv:
        a["divisor"] = _pick(rng, [g for g in range(1, c + 1) if c % g == 0])
    else:
        a["multiplier"] = rng.randint(1, 3)
    return a


def _dw_shape(a, shape):
    _window_fits(a, shape, "DepthwiseConvolution")
    _need(len(shape) in (3, 4), "DepthwiseConvolution is 1D/2D only, not shape {}", shape)
    sp = [conv_out(*t) for t in zip(shape[2:], a["kernel"], a["pad"], a["stride"], a["dilation"])]
    return (shape[0], shape[1] * a["multiplier"]) + tuple(sp)


def _dw_params(a, shape):
    c = shape[1] * a["multiplier"]
    return [("depthwise_conv/W", (c,) + tuple(a["kernel"]))] + (
        [("depthwise_conv/b", (c,))] if a["bias"] else [])


def _dw_build(x, a, p):
    return F.depthwise_convolution(x, p[0], p[1] if a["bias"] else None, pad=a["pad"],
                                   stride=a["stride"], dilation=a["dilation"],
                                   multiplier=a["multiplier"])


def _dwd_shape(a, shape):
    _window_fits(a, shape, "DepthwiseDeconvolution")
    _need(len(shape) in (3, 4), "DepthwiseDeconvolution is 1D/2D only, not shape {}", shape)
    _need(shape[1] % a["divisor"] == 0, "divisor {} does not divide {} channels", a["divisor"], shape[1])
    sp = [deconv_out(*t) for t in zip(shape[2:], a["kernel"], a["pad"], a["stride"], a["dilation"])]
    return (shape[0], shape[1] // a["divisor"]) + tuple(sp)


def _dwd_params(a, shape):
    return [("depthwise_deconv/W", (shape[1],) + tuple(a["kernel"]))] + (
        [("depthwise_deconv/b", (shape[1] // a["divisor"],))] if a["bias"] else [])


def _dwd_build(x, a, p):
    return F.depthwise_deconvolution(x, p[0], p[1] if a["bias"] else None, pad=a["pad"],
                                     stride=a["stride"], dilation=a["dilation"],
                                     divisor=a["divisor"])


def _affine_sample(rng, shape, lim):
    base = 1 if len(shape) < 3 or rng.rand() >= lim.odd else rng.randint(2, len(shape))
    if int(np.prod(shape[base:])) > 1024:
        return None
    return dict(out=rng.randint(1, 2 * lim.max_channels + 1), base_axis=base,
                bias=bool(rng.rand() < 0.6))


def _affine_shape(a, shape):
    _need(1 <= a["base_axis"] < len(shape), "Affine base_axis {} on shape {}", a["base_axis"], shape)
    return tuple(shape[:a["base_axis"]]) + (a["out"],)


def _affine_params(a, shape):
    w = [("affine/W", (int(np.prod(shape[a["base_axis"]:])), a["out"]))]
    return w + ([("affine/b", (a["out"],))] if a["bias"] else [])


def _affine_build(x, a, p):
    return F.affine(x, p[0], p[1] if a["bias"] else None, base_axis=a["base_axis"])


# --- normalization --------------------------------------------------------------------
def _bn_sample(rng, shape, lim):
    axis = 1 if len(shape) < 3 or rng.rand() >= lim.odd else rng.randint(2, len(shape))
    # Batch statistics over a handful of values divide by a tiny spread, which turns float32
    # rounding of any exact rewrite into large errors: only where 8+ values are reduced.
    reduced = int(np.prod(shape)) // shape[axis]
    batch_stat = bool(rng.rand() < 0.2) and reduced >= 8
    return dict(axes=[axis], batch_stat=batch_stat, no_scale=bool(rng.rand() < 0.15),
                no_bias=bool(rng.rand() < 0.15), eps=_pick(rng, [1e-5, 1e-5, 1e-3, 0.1, 0.5]))


def _bn_params(a, shape):
    stat = tuple(s if i in a["axes"] else 1 for i, s in enumerate(shape))
    roles = [r for r, drop in (("beta", a["no_bias"]), ("gamma", a["no_scale"])) if not drop]
    return [("bn/" + r, stat) for r in roles + ["mean", "var"]]


def _bn_build(x, a, p):
    it = iter(p)
    beta = None if a["no_bias"] else next(it)
    gamma = None if a["no_scale"] else next(it)
    return F.batch_normalization(x, beta, gamma, next(it), next(it), axes=a["axes"], eps=a["eps"],
                                 batch_stat=a["batch_stat"])


# --- pooling --------------------------------------------------------------------------
def _pool_sample(rng, shape, lim, kind):
    if len(shape) < 4:  # NNabla pools over 2 or 3 trailing dims only
        return None
    d = len(shape) - 2
    n = 2 if d == 3 and rng.rand() < lim.odd else d  # 2D pooling of a 3D volume: legal
    k = [rng.randint(1, 4) for _ in range(n)]
    a = dict(kernel=k, stride=[rng.randint(1, kk + 1) for kk in k],
             pad=[rng.randint(0, kk) if rng.rand() < 0.3 else 0 for kk in k],
             ignore_border=bool(rng.rand() < 0.7))
    if kind == "AveragePooling":
        a["including_pad"] = bool(rng.rand() < 0.5)
    return a


def _pool_shape(a, shape):
    n = len(a["kernel"])
    _need(len(shape) >= 4 and 2 <= n <= len(shape) - 2, "pooling with a {}-D kernel on shape {}", n, shape)
    sp = [pool_out(*t, a["ignore_border"]) for t in zip(shape[-n:], a["kernel"], a["pad"], a["stride"])]
    return tuple(shape[:-n]) + tuple(sp)


def _pool_build(fn):
    def build(x, a, p):
        extra = {"including_pad": a["including_pad"]} if "including_pad" in a else {}
        return fn(x, a["kernel"], a["stride"], a["ignore_border"], a["pad"], **extra)
    return build


def _unpool_sample(rng, shape, lim):
    if len(shape) < 3:
        return None
    d = len(shape) - 2
    n = rng.randint(1, d + 1) if rng.rand() < lim.odd else d
    return dict(kernel=[rng.randint(1, 3) for _ in range(n)])


def _unpool_shape(a, shape):
    n = len(a["kernel"])
    _need(len(shape) >= 3 and n <= len(shape) - 2, "Unpooling with a {}-D kernel on shape {}", n, shape)
    return tuple(shape[:-n]) + tuple(s * k for s, k in zip(shape[-n:], a["kernel"]))


# --- elementwise and joins ------------------------------------------------------------
def _no_params(a, shape):
    return []


def _same_shape(a, shape):
    return tuple(shape)


def _concat_shape(a, shapes):
    axis = a["axis"]
    _need(axis < len(shapes[0]), "Concatenate axis {} on shape {}", axis, shapes[0])
    return tuple(shapes[0][:axis]) + (sum(s[axis] for s in shapes),) + tuple(shapes[0][axis + 1:])


def _axis_shape(a, shape):
    _need(max(a.get("axes", [a.get("axis", 0)])) < len(shape), "axis {} on shape {}", a, shape)
    return tuple(shape)


def _softmax_sample(rng, shape, lim):
    return dict(axis=1 if rng.rand() >= lim.odd else len(shape) - 1)


def _alpha_sample(rng, shape, lim):
    return dict(alpha=float(_pick(rng, [0.1, 0.2, 0.5, 1.0])))


def _no_args(rng, shape, lim):
    return {}


def _activation(fn, sample=_no_args):
    return Op(sample, _same_shape, _no_params, lambda x, a, p: fn(x, **a), 1)


ACTIVATIONS = {
    "ReLU": _activation(F.relu),
    "LeakyReLU": _activation(F.leaky_relu, _alpha_sample),
    "ELU": _activation(F.elu, _alpha_sample),
    "ReLU6": _activation(F.relu6),
    "Sigmoid": _activation(F.sigmoid),
    "Tanh": _activation(F.tanh),
    "Swish": _activation(F.swish),
    "Softmax": Op(_softmax_sample, _axis_shape, _no_params, lambda x, a, p: F.softmax(x, **a), 1),
}

OPS = {
    "Convolution": Op(_conv_sample, _conv_shape, _conv_params, _conv_build, 1),
    "Deconvolution": Op(_deconv_sample, _deconv_shape, _deconv_params, _deconv_build, 1),
    "DepthwiseConvolution": Op(_dw_sample, _dw_shape, _dw_params, _dw_build, 1),
    "DepthwiseDeconvolution": Op(lambda r, s, l: _dw_sample(r, s, l, deconv=True), _dwd_shape,
                                 _dwd_params, _dwd_build, 1),
    "Affine": Op(_affine_sample, _affine_shape, _affine_params, _affine_build, 1),
    "BatchNormalization": Op(_bn_sample, _axis_shape, _bn_params, _bn_build, 1),
    "MaxPooling": Op(lambda r, s, l: _pool_sample(r, s, l, "MaxPooling"), _pool_shape, _no_params,
                     _pool_build(F.max_pooling), 1),
    "AveragePooling": Op(lambda r, s, l: _pool_sample(r, s, l, "AveragePooling"), _pool_shape,
                         _no_params, _pool_build(F.average_pooling), 1),
    "SumPooling": Op(lambda r, s, l: _pool_sample(r, s, l, "SumPooling"), _pool_shape, _no_params,
                     _pool_build(F.sum_pooling), 1),
    "Unpooling": Op(_unpool_sample, _unpool_shape, _no_params,
                    lambda x, a, p: F.unpooling(x, a["kernel"]), 1),
    "Concatenate": Op(None, _concat_shape, _no_params,
                      lambda xs, a, p: F.concatenate(*xs, axis=a["axis"]), "concat"),
    "Add2": Op(None, lambda a, shapes: tuple(shapes[0]), _no_params,
               lambda xs, a, p: F.add2(*xs), "pair"),
    "Mul2": Op(None, lambda a, shapes: tuple(shapes[0]), _no_params,
               lambda xs, a, p: F.mul2(*xs), "pair"),
}
OPS.update(ACTIVATIONS)
