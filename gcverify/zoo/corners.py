"""Small graphs that put every guard and option of our converters on the default matrix.

A planted bug in a converter hides when no model reaches the code it breaks: until these
models existed, BN folding into the *following* layer folded nothing on any zoo model (its
row proved nothing), no BN lacked a scale or a shift, none had a forked producer, none ran
on batch statistics, and no convolution was dilated (a layout pass that drops ``dilation``
passed everywhere). docs/coverage.md lists, per converter and guard, which output here (or
elsewhere in the zoo) reaches it and what a correct converter does there. Every BN has seeded
random statistics (``randomize_parameters``); ``adjust_*`` then sets the few values a
situation needs (a zero mean, frozen parameters, weights large enough to saturate ReLU6).

``bn_corners``, one output per neighbourhood of a BN (kept or folded, both directions):

0. a BN on the graph input (data normalization) read by one unpadded convolution: folding
   backwards has no layer (kept), folding forwards is exact (folded into the convolution);
1. a convolution whose output is read by its BN (``no_bias``) *and* by a sigmoid: kept;
2. conv -> BN (``no_scale``) -> Affine over (C, H, W): folds both ways (into the Affine's rows);
3. conv -> BN -> zero-padded conv: forwards kept (the shift would be missing at the border);
4. conv -> BN (``no_bias``, running mean 0) -> zero-padded conv: no shift, so forwards folds;
5. conv -> BN -> unpadded depthwise conv, and conv -> BN -> unpadded grouped conv;
6. a convolution reading its weight through a Reshape of a flat parameter -> BN: folds;
7. DepthwiseDeconvolution (``divisor=2``) -> BN: folds into the depthwise deconvolution;
8. Affine(base_axis=2) -> BN over axis 1 (before base_axis) -> Affine(base_axis=2), and
   conv -> BN over axis 2 (not the channel axis) -> unpadded conv: kept by both folders,
   linearized as 1D depthwise convolutions. (A BN over
   non-contiguous axes is no case: NNabla spells it as Transposes around a BN over one merged
   axis, whose statistics are then computed by the graph, as in ``bn_training``.)
9. a frozen conv + frozen BN (need_grad False: the folded weights stay frozen) and a frozen
   conv + trainable BN (the folded weights need a gradient: they derive from gamma too).

``bn_training``: BNs without an inference form, each after a convolution it could otherwise
fold into: one on batch statistics (``batch_stat=True``; its random running statistics
differ from the batch's, so folding them changes every number), one whose gamma is computed
by the graph (``exp`` of a parameter), and one after a convolution whose weight is computed
(weight normalization ``W / rms(W)``): all kept, by every BN converter. That convolution reads
a BN of the input, which folding forwards must keep too (the weight it would scale is computed).

``layout_corners``: a dilated convolution whose ReLU6 saturates (weights scaled so a third of
its inputs exceed 6), a dilated depthwise convolution, spatial Pad / Slice / Flip / Transpose,
PReLU per channel, Split and Stack over rows, Interpolate, and an Affine(base_axis=2) over
spatial data (which a layout pass must fence).
"""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np

__all__ = ["bn_corners", "bn_training", "layout_corners", "adjust_bn_corners", "adjust_layout_corners"]


def _bn(h, name, axes=(1,), **kw):
    return PF.batch_normalization(h, axes=list(axes), batch_stat=kw.pop("batch_stat", False),
                                  name=name, **kw)


def _conv(h, maps, name, pad=1, **kw):
    return PF.convolution(h, maps, (3, 3), pad=(pad, pad), name=name, **kw)


def bn_corners(image):
    """Thirteen outputs for the situations of the module docstring (in its order)."""
    n = image.shape[0]
    outs = [F.relu(_conv(_bn(image, "input-bn"), 4, "after-input", pad=0))]  # 0
    forked = _conv(image, 4, "forked", with_bias=False)  # 1
    outs.append(F.add2(F.relu(_bn(forked, "forked-bn", no_bias=True)), F.sigmoid(forked)))
    head = _bn(_conv(image, 4, "to-affine", stride=(2, 2)), "to-affine-bn", no_scale=True)  # 2
    outs.append(PF.affine(head, 5, name="head"))
    outs.append(F.relu(_conv(_bn(_conv(image, 4, "pre-padded"), "shifted-bn"), 4, "padded")))  # 3
    outs.append(F.relu(_conv(_bn(_conv(image, 4, "pre-zero"), "zero-shift-bn", no_bias=True), 4,
                             "padded-zero")))  # 4
    dw = _bn(_conv(image, 4, "pre-dw"), "dw-bn")  # 5
    outs.append(F.relu(PF.depthwise_convolution(dw, (3, 3), name="dw-after")))
    grouped = _bn(_conv(image, 4, "pre-grouped"), "grouped-bn")
    outs.append(F.relu(_conv(grouped, 4, "grouped-after", pad=0, group=2)))
    flat = nn.parameter.get_parameter_or_create("flat/W", (4 * 3 * 3 * 3,))  # 6
    outs.append(F.relu(_bn(F.convolution(image, F.reshape(flat, (4, 3, 3, 3)), pad=(1, 1)), "flat-bn")))
    pooled = F.max_pooling(F.relu(_conv(image, 4, "pre-dwdeconv")), (2, 2))  # 7
    up = PF.depthwise_deconvolution(pooled, (2, 2), stride=(2, 2), divisor=2, name="dwdeconv")
    outs.append(F.relu(_bn(up, "dwdeconv-bn")))
    tokens = PF.affine(F.reshape(image, (n, 3, 64)), 6, base_axis=2, name="tokens")  # 8
    outs.append(F.tanh(PF.affine(_bn(tokens, "tokens-bn", axes=(1,)), 4, base_axis=2, name="per-token")))
    outs.append(F.relu(_conv(_bn(_conv(image, 4, "rows"), "rows-bn", axes=(2,)), 4, "after-rows", pad=0)))
    frozen = _conv(image, 4, "frozen", fix_parameters=True)  # 9
    outs.append(F.relu(_bn(frozen, "frozen-bn", fix_parameters=True)))
    outs.append(F.relu(_bn(_conv(image, 4, "half-frozen", fix_parameters=True), "half-frozen-bn")))
    return outs


def adjust_bn_corners(params):
    """After seeding: the zero-shift BN gets running mean 0 and the flat weight, which no PF
    layer seeds, He-style values. (The frozen parameters are built with ``fix_parameters``:
    ``need_grad`` belongs to the variable the graph reads, not to the scope's entry.)"""
    params["zero-shift-bn/bn/mean"].d = 0.0
    flat = params["flat/W"]
    flat.d = np.random.RandomState(flat.size).normal(0.0, np.sqrt(2.0 / 27), flat.shape).astype(np.float32)


def bn_training(image):
    """Three outputs: BN on batch statistics, BN with a computed gamma, BN after a conv whose
    weight is computed (each would otherwise fold into its convolution)."""
    training = F.relu(_bn(_conv(image, 4, "batch-stat"), "batch-stat-bn", batch_stat=True))
    h = _conv(image, 4, "computed-gamma")
    log_gamma = nn.parameter.get_parameter_or_create(
        "computed-gamma-bn/log_gamma", (1, 4, 1, 1),
        nn.initializer.UniformInitializer((-0.4, 0.4), rng=np.random.RandomState(4)))
    stats = [nn.parameter.get_parameter_or_create("computed-gamma-bn/" + k, (1, 4, 1, 1), init,
                                                  need_grad=k == "beta")
             for k, init in (("beta", nn.initializer.ConstantInitializer(0.1)),
                             ("mean", nn.initializer.ConstantInitializer(0.2)),
                             ("var", nn.initializer.ConstantInitializer(1.5)))]
    computed = F.relu(F.batch_normalization(h, stats[0], F.exp(log_gamma), stats[1], stats[2],
                                            axes=[1], batch_stat=False))
    w = nn.parameter.get_parameter_or_create(
        "normalized/W", (4, 3, 3, 3),
        nn.initializer.NormalInitializer(np.sqrt(2.0 / 27), rng=np.random.RandomState(27)))
    rms = F.pow_scalar(F.add_scalar(F.mean(F.pow_scalar(w, 2.0), axis=(1, 2, 3), keepdims=True), 1e-5), -0.5)
    normalized = F.convolution(_bn(image, "pre-normalized-bn"), F.mul2(w, rms), pad=(1, 1))
    normalized = F.relu(_bn(normalized, "normalized-bn"))
    return training, computed, normalized


def layout_corners(image):
    """Six outputs over a (N, 3, 12, 12) image: the layout situations of the module docstring."""
    n = image.shape[0]
    h = F.relu6(PF.convolution(image, 6, (3, 3), pad=(2, 2), dilation=(2, 2), name="dilated"))
    dw = PF.depthwise_convolution(h, (3, 3), pad=(2, 2), dilation=(2, 2), name="dw-dilated")
    padded = F.pad(F.relu(dw), (1, 1, 2, 0))  # (N, 6, 14, 14)
    cropped = F.slice(padded, (0, 0, 1, 0), (n, 6, 13, 14), (1, 1, 1, 2))  # (N, 6, 12, 7)
    turned = F.transpose(F.flip(cropped, axes=[3]), (0, 1, 3, 2))  # (N, 6, 7, 12)
    slope = PF.prelu(PF.convolution(turned, 4, (1, 1), name="mix"), base_axis=1, shared=False, name="slope")
    rows = F.split(F.max_pooling(slope, (2, 2)), axis=2)  # 3 rows of (N, 4, 6)
    stacked = F.stack(*[F.mul_scalar(r, float(k + 1)) for k, r in enumerate(rows)], axis=2)
    resized = F.interpolate(stacked, output_size=(6, 12), mode="linear")
    per_row = PF.affine(resized, 3, base_axis=2, name="per-row")  # (N, 4, 3): fenced
    return h, dw, slope, stacked, resized, per_row


def adjust_layout_corners(params):
    """The dilated convolution's weights x8: its ReLU6 saturates on about a third of its inputs,
    so a quantizer that treats ReLU6 as ReLU (no top at 6) or as signed shows."""
    w = params["dilated/conv/W"]
    w.d = w.d * 8.0
