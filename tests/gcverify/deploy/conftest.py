"""Files the convert tests make themselves: an .nnp holding a training and an inference
network of one small conv net (BN with random statistics), its executor naming the inference
one; a planted wrong converter."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from gcverify.core.model import build_privately, scope_holding

PLANTED = '''
import gcverify


@gcverify.converter("scaled_weight")
def scaled_weight(model):
    """A wrong converter: BN folded, then one folded weight (the conversion's own) scaled by 1.01."""
    from gcverify.builtin.ours import bn_fold
    conversion = bn_fold(model)
    name = sorted(k for k in conversion.parameters if k.endswith("/bn_folded"))[0]
    w = conversion.parameters[name]
    w.d = w.d * 1.01
    return conversion
'''


def small_net(x, training):
    h = PF.convolution(x, 6, (3, 3), pad=(1, 1), name="conv1")
    h = F.relu(PF.batch_normalization(h, batch_stat=training, name="bn1"))
    h = F.max_pooling(h, (2, 2))
    h = PF.convolution(h, 8, (3, 3), pad=(1, 1), with_bias=False, name="conv2")
    h = F.relu(PF.batch_normalization(h, batch_stat=training, name="bn2"))
    return PF.affine(h, 5, name="fc")


def write_train_and_infer(path, batch=2, seed=0):
    """Write the .nnp; returns (params, input data) for checking what loaders compute."""
    def build():
        x_train, x_infer = nn.Variable((batch, 3, 8, 8)), nn.Variable((batch, 3, 8, 8))
        label = nn.Variable((batch, 1))
        loss = F.mean(F.softmax_cross_entropy(small_net(x_train, True), label))
        return x_train, label, loss, x_infer, small_net(x_infer, False)
    (x_train, label, loss, x_infer, y), params = build_privately(build)
    rng = np.random.RandomState(seed)
    for name, v in params.items():
        v.d = rng.uniform(0.5, 1.5, v.shape) if name.endswith(("var", "gamma")) else rng.normal(0, 0.5, v.shape)
    contents = {
        "networks": [
            {"name": "training", "batch_size": batch, "outputs": {"loss": loss},
             "names": {"x": x_train, "label": label}},
            {"name": "inference", "batch_size": batch, "outputs": {"y": y}, "names": {"x": x_infer}}],
        "executors": [{"name": "runtime", "network": "inference", "data": ["x"], "output": ["y"]}]}
    from nnabla.utils.save import save
    with scope_holding(params):
        save(str(path), contents)
    data = rng.uniform(-1, 1, (batch, 3, 8, 8)).astype(np.float32)
    x_infer.d = data
    y.forward()
    return params, data, y.d.copy()


@pytest.fixture
def train_and_infer(tmp_path):
    """``(path, input data, the inference network's output on it)``."""
    path = tmp_path / "net.nnp"
    _, data, expected = write_train_and_infer(path)
    return path, data, expected


@pytest.fixture
def planted(tmp_path):
    """A module file registering ``scaled_weight``: bn_fold with one weight off by 1%."""
    path = tmp_path / "planted.py"
    path.write_text(PLANTED)
    return path
