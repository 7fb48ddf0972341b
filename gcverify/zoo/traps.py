"""Small graphs holding the situations NNabla 1.39's built-in converters get wrong.

Each output isolates one situation, so the numeric table of a failing row (one line per
output) says which one broke; docs/nnabla_bugs.md lists what NNabla does with each.

``bn_traps`` (every BN has an inference form and an exact fold into its producer):

0. Deconvolution -> BN (weights are (in, out, k...): the fold scales axis 1; the
   deconvolution has a bias, because without one NNabla's fold raises before it can be
   wrong, sizing the bias it adds by the input channels);
1. one convolution weight shared by two convolutions, each followed by its own BN
   (folding must give each its own weight: a folded weight found by name is the other's);
2. conv -> BN -> zero-padded conv (a fold into the *following* conv would miss the BN's
   shift at the border);
3. conv -> BN -> conv without padding (exact both ways);
4. Affine -> BN with as many inputs as outputs (NNabla scales the weight's rows instead of
   its columns; with ``in != out`` its fold raises instead, see the tests).

Two situations where a correct converter keeps the BN live in :mod:`.corners` (the matrix
judges keeps since): a convolution whose output is also read by another function (NNabla
drops the BN; ``bn_corners``) and a BN with ``batch_stat=True`` (NNabla folds its running
statistics; ``bn_training``).

The input's only reader is a ReLU stem, so NNabla's ChannelLastModifier gets past its
first-function-is-a-convolution crash and meets the later situations.
"""
import nnabla.functions as F
import nnabla.parametric_functions as PF

__all__ = ["bn_traps"]


def _bn(h, name, test):
    return PF.batch_normalization(h, batch_stat=not test, name=name)


def _conv(h, maps, name, pad=1, with_bias=False):
    return PF.convolution(h, maps, (3, 3), pad=(pad, pad), with_bias=with_bias, name=name)


def bn_traps(image, test=True):
    """Five outputs, one per situation above (in that order: NNabla's ChannelLastModifier
    meets the deconvolution first); the image needs H, W divisible by 4."""
    stem = F.relu(image)
    # 0: a strided deconvolution with its BN
    deconv = PF.deconvolution(F.max_pooling(stem, (2, 2)), 4, (2, 2), stride=(2, 2),
                              with_bias=True, name="up")
    deconv = _bn(deconv, "up-bn", test)
    # 1: both calls of the scope "shared" use one weight "shared/conv/W"
    a = _bn(_conv(stem, 6, "shared"), "shared-bn-a", test)
    b = _bn(_conv(F.sigmoid(stem), 6, "shared"), "shared-bn-b", test)
    shared = F.add2(a, b)
    # 2 and 3: a BN between two convolutions, the second with and without zero padding
    mid = _bn(_conv(stem, 6, "pre", with_bias=True), "pre-bn", test)
    # (ReLUs after them: NNabla's opposite fold leaves a graph's last conv unfolded)
    padded = F.relu(_conv(mid, 4, "post-padded", pad=1, with_bias=True))
    unpadded = F.relu(_conv(mid, 4, "post-unpadded", pad=0))
    # 4: square Affine (c*h/4*w/4 inputs -> as many outputs) on pooled features
    pooled = F.average_pooling(stem, (4, 4))
    n_in = pooled.size // pooled.shape[0]
    affine = _bn(PF.affine(pooled, n_in, name="fc"), "fc-bn", test)
    return deconv, shared, padded, unpadded, affine
