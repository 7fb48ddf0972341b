"""ImageNet ResNet-50 (bottleneck v1) built from code, as in seed 000.

53 Convolution (stem + 16 blocks x 3 + 4 projection shortcuts), a BatchNormalization after
every one of them, 16 residual Add2. The classifier pools with a 7x7 AveragePooling so the
whole network stays inside the layer set that layout conversion handles natively.
"""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # width, blocks, stride
EXPANSION = 4


def conv_bn(h, maps, kernel, stride, name, relu=True, test=True):
    pad = tuple(k // 2 for k in kernel)
    with nn.parameter_scope(name):
        h = PF.convolution(h, maps, kernel, pad=pad, stride=stride, with_bias=False)
        h = PF.batch_normalization(h, batch_stat=not test)
    return F.relu(h) if relu else h


def bottleneck(x, width, stride, name, test=True):
    out_maps = width * EXPANSION
    h = conv_bn(x, width, (1, 1), (1, 1), name + "/conv1", test=test)
    h = conv_bn(h, width, (3, 3), (stride, stride), name + "/conv2", test=test)
    h = conv_bn(h, out_maps, (1, 1), (1, 1), name + "/conv3", relu=False, test=test)
    if stride != 1 or x.shape[1] != out_maps:
        x = conv_bn(x, out_maps, (1, 1), (stride, stride), name + "/shortcut",
                    relu=False, test=test)
    return F.relu(F.add2(h, x))


def resnet50(image, num_classes=1000, test=True):
    h = conv_bn(image, 64, (7, 7), (2, 2), "stem", test=test)
    h = F.max_pooling(h, (3, 3), (2, 2), pad=(1, 1))
    for s, (width, blocks, stride) in enumerate(STAGES):
        for b in range(blocks):
            h = bottleneck(h, width, stride if b == 0 else 1, "stage{}/block{}".format(s + 1, b + 1),
                           test=test)
    h = F.average_pooling(h, h.shape[2:])
    return PF.affine(h, num_classes, name="fc")
