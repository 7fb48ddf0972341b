"""conftest.py of the downstream project the plugin tests run (copied into pytester's
directory by the ``project`` fixture): a tiny model and a converter of its own, the way
users register them, and a cudnn probe that answers as a machine without nnabla-ext-cuda
does, so the tests mean the same on machines with GPUs. ``GC_PLANT`` plants regressions."""
import os

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

import gcverify
from gcverify import Conversion, Functions, Removes, converter
from gcverify.zoo import randomize_parameters


class NoCudnnHere:
    def extension(self):
        return "ModuleNotFoundError: No module named 'nnabla_ext.cudnn' (faked by the test project)"

    def device_count(self):
        return 0

    def compute_capability(self, gpu):
        return None


def pytest_gcverify_cuda_probe(config):
    return NoCudnnHere()


@gcverify.model("tiny", default=True)
def tiny(seed=0):
    """conv -> BN -> ReLU -> conv on a 2x3x8x8 input, random BN statistics."""
    x = nn.Variable((2, 3, 8, 8))
    h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1")
    h = PF.batch_normalization(h, batch_stat=False, name="bn1")
    y = PF.convolution(F.relu(h), 2, (3, 3), pad=(1, 1), name="c2")
    randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
    return x, y


@converter("relu_to_leaky", layers=[Removes(Functions("ReLU"))])
def relu_to_leaky(model):
    """ReLU -> LeakyReLU(alpha=0): same numbers. GC_PLANT plants regressions."""
    import converters as GC
    from converters.rewrite import GraphPass

    plant = os.environ.get("GC_PLANT", "")

    class Leaky(GraphPass):
        def rewrite(self, f, inputs, b, plan):
            if f.info.type_name == "ReLU":
                return b.call("LeakyReLU", inputs, {"alpha": 0.0, "inplace": False})
            wrong = {"error": 2e-5, "wrong": 1e-2}.get(plant)
            if plant.startswith("scale:"):  # "scale:X": weights X off, for errors near the noise floor
                wrong = float(plant[len("scale:"):])
            if wrong and f.info.type_name == "Convolution" and f.outputs[0].parent.inputs[0].parent:
                # "error": within float32 tolerance, 20x the recorded error; "wrong": beyond it
                w = b.parameter(f.inputs[1], f.inputs[1].d * (1 + wrong), "planted")
                return b.copy(f, [inputs[0], w] + list(inputs[2:]))
    c = GC.Converter(params=model.params)
    c._passes = [Leaky()]
    y = c.convert(list(model.outputs), list(model.inputs))
    if plant == "layers":  # one more function, same numbers
        y = [F.identity(v) for v in y]
    if plant == "crash" and os.environ.get("PYTEST_XDIST_WORKER"):  # kill the worker
        os._exit(3)
    # a Conversion with the variable map lets a failure name the first diverging function
    return Conversion(y, list(model.inputs), dict(c.last_result.var_map), dict(model.params))
