"""Optional: the verified ``.nnp`` also as ONNX, checked in onnxruntime against the original.

Export uses NNabla's own file-format converter (``nnabla.utils.converter.onnx``, from the
``nnabla-converter`` package). Its ONNX exporter needs only ``onnx``; ``nnabla_cli convert``
would also import its TensorFlow half, so the exporter is called directly. Install it with
``pip install --no-deps nnabla-converter==1.39.0`` plus ``pip install gcverify[onnx]`` (onnx,
onnxruntime) rather than its full dependency list (TensorFlow 2.14). Where either is
missing, the export is skipped with the reason.

The check runs the ONNX file in onnxruntime on the data the conversion was verified on (moved
where its inputs moved) and compares with the *original* network's outputs under the
conversion's tolerance, as the numeric check does: ONNX kernels are not NNabla's, so bit
equality is not expected, but a wrong export is caught (NNabla 1.39's exporter writes a
``channel_last=True`` convolution as a channel-first ONNX ``Conv``, which onnxruntime then
refuses or computes on the wrong axes).
"""
import contextlib
import importlib
import io

from ..verify.execution import to_original_layouts
from ..verify.numeric import numeric_check
from ..verify.results import CheckResult

__all__ = ["onnx_unavailable", "export_onnx", "onnx_check"]


def onnx_unavailable():
    """Why ONNX export cannot run here (a sentence), or None when it can."""
    for module, package in (("nnabla.utils.converter.onnx", "nnabla-converter (pip install --no-deps "
                                                            "nnabla-converter==1.39.0) with onnx"),
                            ("onnxruntime", "onnxruntime")):
        try:
            importlib.import_module(module)
        except Exception as e:  # ImportError, or a broken install raising something else
            return "{} is not importable ({}: {}); install {}".format(module, type(e).__name__, e, package)
    return None


def export_onnx(nnp_path, onnx_path, batch_size):
    """Write the ``.nnp`` at ``nnp_path`` (its first executor's network) as ONNX."""
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its progress
        nnp = NnpImporter(nnp_path, expand_network=True, executor_index=0).execute()
        OnnxExporter(nnp, batch_size, -1).execute(onnx_path)


def onnx_check(onnx_path, feeds, reference, output_perms, tolerance):
    """Run ``onnx_path`` in onnxruntime on ``feeds`` ({input name: array}) and compare its
    outputs, moved back by ``output_perms``, with the original's ``reference``."""
    import onnxruntime
    try:
        session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        missing = sorted(set(names) - set(feeds))
        if missing:
            return CheckResult("onnx", False, "the ONNX model wants input(s) {} that the network does "
                               "not have".format(", ".join(missing)))
        actual = session.run(None, {n: feeds[n] for n in names})
    except Exception as e:  # onnxruntime raises its own exception types
        return CheckResult("onnx", False, "onnxruntime could not run the exported ONNX model: {}: {}".format(
            type(e).__name__, str(e).strip()[:300]))
    result = numeric_check(to_original_layouts(actual, output_perms), reference, tolerance)
    return CheckResult("onnx", result.passed, "onnxruntime against the original: " + result.summary,
                       result.details, {})
