"""Running a graph on data: feed its input variables, forward its outputs, copy them out."""
__all__ = ["feed", "evaluate"]


def feed(inputs, arrays, what="input"):
    """``inputs[i].d = arrays[i]``; a shape that does not fit is an error naming the input."""
    import numpy as np
    for i, (x, d) in enumerate(zip(inputs, arrays)):
        if tuple(x.shape) != np.shape(d):
            raise ValueError("{} {} has shape {}; the data to feed it has shape {}".format(
                what, i, tuple(x.shape), np.shape(d)))
        x.d = d


def evaluate(outputs, inputs, arrays, what="input"):
    """Forward ``outputs`` with ``inputs`` fed ``arrays``; numpy copies of the outputs."""
    import nnabla as nn
    feed(inputs, arrays, what)
    nn.forward_all(list(outputs), clear_no_need_grad=True)
    return [o.d.copy() for o in outputs]
