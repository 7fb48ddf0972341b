"""Small networks that exercise the layers the converters must handle, in test mode.

Each is a few milliseconds on CPU so the whole model matrix stays fast:

* ``unet``: encoder/decoder with Max/Average/SumPooling down, Unpooling and Deconvolution up
  (with and without bias, one grouped), channel-axis Concatenate skip connections.
* ``mobilenet``: depthwise convolutions (with and without multiplier), grouped convolutions
  and an inverted-residual Add2, BN after every convolution.
* ``conv1d``: (N, C, L) convolutions, BN, pooling (through a 2D reshape: NNabla pools only 2D/3D)
  and an affine head with BN.
* ``conv3d``: (N, C, D, H, W) convolutions, BN, pooling and a strided deconvolution.

Parameters are named by scope; their values come from ``randomize_parameters``.
"""
import nnabla.functions as F
import nnabla.parametric_functions as PF

__all__ = ["unet", "mobilenet", "conv1d_net", "conv3d_net"]


def _bn(h, name, test, relu=True):
    h = PF.batch_normalization(h, batch_stat=not test, name=name + "-bn")
    return F.relu(h) if relu else h


def _conv_bn(h, maps, kernel, name, test, stride=None, group=1, with_bias=False, relu=True):
    pad = tuple(k // 2 for k in kernel)
    h = PF.convolution(h, maps, kernel, pad=pad, stride=stride, group=group,
                       with_bias=with_bias, name=name)
    return _bn(h, name, test, relu)


def unet(image, out_maps=2, test=True):
    """Three-level U-Net; spatial size must be divisible by 8."""
    k = (3, 3)
    e1 = _conv_bn(image, 8, k, "enc1", test)
    e2 = _conv_bn(F.max_pooling(e1, (2, 2)), 16, k, "enc2", test, with_bias=True)
    e3 = _conv_bn(F.average_pooling(e2, (2, 2)), 16, k, "enc3", test)
    mid = _conv_bn(F.sum_pooling(e3, (2, 2)), 32, k, "middle", test)

    d3 = F.concatenate(F.unpooling(mid, (2, 2)), e3, axis=1)
    d3 = _conv_bn(d3, 16, k, "dec3", test)

    up2 = PF.deconvolution(d3, 16, (2, 2), stride=(2, 2), with_bias=True, name="up2")
    d2 = F.concatenate(_bn(up2, "up2", test), e2, axis=1)
    d2 = _conv_bn(d2, 16, k, "dec2", test)

    up1 = PF.deconvolution(d2, 8, (4, 4), pad=(1, 1), stride=(2, 2), group=2,
                           with_bias=False, name="up1")
    d1 = F.concatenate(_bn(up1, "up1", test), e1, axis=1)
    d1 = _conv_bn(d1, 8, k, "dec1", test)
    return PF.convolution(d1, out_maps, (1, 1), with_bias=True, name="head")


def _depthwise_bn(h, name, test, stride=(1, 1), multiplier=1, with_bias=False, relu=True):
    h = PF.depthwise_convolution(h, (3, 3), pad=(1, 1), stride=stride, multiplier=multiplier,
                                 with_bias=with_bias, name=name)
    return _bn(h, name, test, relu)


def mobilenet(image, num_classes=10, test=True):
    """MobileNet-like: depthwise-separable blocks, grouped convs, one inverted residual."""
    h = _conv_bn(image, 16, (3, 3), "stem", test, stride=(2, 2))
    h = _depthwise_bn(h, "block1/dw", test)
    h = _conv_bn(h, 32, (1, 1), "block1/pw", test)
    h = _depthwise_bn(h, "block2/dw", test, stride=(2, 2), with_bias=True)
    h = _conv_bn(h, 32, (1, 1), "block2/pw", test, group=4)
    # Inverted residual: expand with a multiplier-2 depthwise conv, project back, add.
    r = _depthwise_bn(h, "block3/dw", test, multiplier=2)
    r = _conv_bn(r, 32, (1, 1), "block3/project", test, group=2, relu=False)
    h = F.relu(F.add2(h, r))
    h = _conv_bn(h, 64, (3, 3), "block4/grouped", test, group=8)
    h = F.average_pooling(h, h.shape[2:])
    return PF.affine(h, num_classes, name="fc")


def _pool1d(pool, h, size):
    # NNabla pools 2D/3D only: pool (N, C, L) as (N, C, 1, L), the usual 1D idiom.
    n, c, length = h.shape
    h = pool(F.reshape(h, (n, c, 1, length)), (1, size))
    return F.reshape(h, (n, c, h.shape[-1]))


def conv1d_net(signal, num_classes=5, test=True):
    """1D convolutions over (N, C, L); L must be divisible by 8."""
    h = _conv_bn(signal, 8, (5,), "conv1", test)
    h = _pool1d(F.max_pooling, h, 2)
    h = _conv_bn(h, 16, (3,), "conv2", test, with_bias=True)
    h = _pool1d(F.average_pooling, h, 2)
    h = _conv_bn(h, 16, (3,), "conv3", test, stride=(2,), group=2)
    h = PF.affine(h, 16, with_bias=False, name="fc1")
    h = _bn(h, "fc1", test)
    return PF.affine(h, num_classes, name="fc2")


def conv3d_net(volume, out_maps=3, test=True):
    """3D convolutions over (N, C, D, H, W); D, H, W must be divisible by 4."""
    k = (3, 3, 3)
    h = _conv_bn(volume, 8, k, "conv1", test)
    h = F.max_pooling(h, (2, 2, 2))
    h = _conv_bn(h, 16, k, "conv2", test, with_bias=True)
    h = F.average_pooling(h, (2, 2, 2))
    h = PF.deconvolution(h, 8, (2, 2, 2), stride=(2, 2, 2), with_bias=False, name="up")
    h = _bn(h, "up", test)
    return PF.convolution(h, out_maps, (1, 1, 1), with_bias=True, name="head")
