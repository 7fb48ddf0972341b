"""NNabla's pretrained ResNet-50, used only when its ``.nnp`` is already on disk.

``nnabla.models.imagenet.ResNet50`` downloads ``Resnet-50.nnp`` into
``<data home>/nnp_models/imagenet/`` (data home: ``~/nnabla_data``, or ``./nnabla_data`` when
the home directory is ``/``). We look there, or at the file named by ``$GCVERIFY_RESNET50_NNP``,
and never download. The file carries its own graph, so it is built with NNabla's nnp loader
(not mapped onto our ``resnet50`` code, whose parameter names cannot be checked against the
real file without it), prepared for inference the way ``nnabla.models`` does: the
``ImageAugmentationX`` function is bypassed, every BatchNormalization uses its running
statistics, parameters are fixed and the graph stops at the classifier variable ``Affine``.
"""
import os

from .nnp import NnpLoadError, build_network, open_nnp

__all__ = ["RESNET50_ENV", "nnabla_resnet50_path", "resnet50_pretrained_path",
           "build_resnet50_pretrained", "PretrainedNotFoundError"]

RESNET50_ENV = "GCVERIFY_RESNET50_NNP"
_NETWORK = "Training"  # the network nnabla.models builds from this file
_CLASSES = 1000


class PretrainedNotFoundError(FileNotFoundError):
    pass


def nnabla_resnet50_path():
    """Where ``nnabla.models.imagenet.ResNet50`` keeps its download (computed, nothing created)."""
    home = os.path.expanduser("~/nnabla_data")
    if home == "/nnabla_data":
        home = "./nnabla_data"
    return os.path.join(home, "nnp_models", "imagenet", "Resnet-50.nnp")


def resnet50_pretrained_path():
    return os.environ.get(RESNET50_ENV) or nnabla_resnet50_path()


def _inference_pass():
    from nnabla.utils.nnp_graph import NnpNetworkPass
    callback = NnpNetworkPass()
    callback.remove_and_rewire("ImageAugmentationX")
    callback.set_batch_normalization_batch_stat_all(False)
    callback.use_up_to("Affine")
    callback.fix_parameters()
    return callback


def build_resnet50_pretrained(seed=0):
    """NNabla's pretrained ResNet-50 from an .nnp already on disk (never downloaded).

    The file is ``$GCVERIFY_RESNET50_NNP`` or where ``nnabla.models`` stores its download.
    Batch 1; the input is fed seeded uniform data in [-1, 1).
    """
    path = resnet50_pretrained_path()
    if not os.path.isfile(path):
        raise PretrainedNotFoundError(
            "resnet50-pretrained needs NNabla's pretrained Resnet-50.nnp on disk; none at {!r}. "
            "Set {} to its path (gcverify never downloads weights).".format(path, RESNET50_ENV))
    opened = open_nnp(path)
    network = _NETWORK if _NETWORK in opened[1] else opened[1][0]
    model = build_network(opened, path, network, seed=seed, name="resnet50-pretrained",
                          callback=_inference_pass(), batch_size=1)
    shapes = [tuple(o.shape) for o in model.outputs]
    if shapes != [(1, _CLASSES)]:
        raise NnpLoadError("{!r} does not look like an ImageNet ResNet-50: network {!r} outputs {}, "
                           "expected one (1, {}) classifier output".format(path, network, shapes, _CLASSES))
    return model
