"""A downstream project's conftest: register your own model with the gcverify plugin."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

import gcverify
from gcverify.zoo import randomize_parameters


@gcverify.model("my_net", default=True)
def my_net(seed=0):
    """conv -> BN -> ReLU -> deconv -> BN, random BN statistics (a real model would load weights)."""
    x = nn.Variable((2, 3, 16, 16))
    h = PF.convolution(x, 8, (3, 3), pad=(1, 1), name="enc")
    h = F.relu(PF.batch_normalization(h, batch_stat=False, name="enc-bn"))
    h = PF.deconvolution(h, 4, (2, 2), stride=(2, 2), name="dec")
    y = PF.batch_normalization(h, batch_stat=False, name="dec-bn")
    randomize_parameters([y], nn.get_parameters(grad_only=False), seed)
    return x, y
