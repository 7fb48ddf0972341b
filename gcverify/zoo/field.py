"""Small networks shaped like the ones users bring: the classes of graph on which a verifier
that only knows image classifiers goes wrong.

* ``attention``: self-attention over (N, T, D) tokens with a causal mask held as a constant
  (``nn.Variable.from_numpy_array``), a position table constant, Affine with
  ``base_axis=2`` followed by a BN over the feature axis, LayerNorm;
* ``lstm``: an LSTM cell unrolled over 4 steps from zero-state constants ``h0``, ``c0``;
* ``noisy_dqn``: a conv trunk with BN and a NoisyNet head whose weight noise is drawn by
  ``F.randn`` (``seed=-1``) at every forward;
* ``concat_bn``: a BN after a ``Concatenate`` of two convolutions (no layer to fold it into:
  a correct BN folder keeps it) and an SE block;
* ``two_inputs``: an image and a vector of quantile fractions (only the image has a layout);
* ``relu6_net``: MobileNet-v2-style blocks with ReLU6, a hard-sigmoid SE gate and Swish
  (a fixed-point activation quantizer that knows only ReLU changes nothing here).

Every builder takes its inputs and returns its outputs; parameters come from ``PF`` (the
zoo's ``randomize_parameters`` gives weights and BN statistics seeded, non-trivial values).
"""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np

__all__ = ["attention", "lstm", "noisy_dqn", "concat_bn", "two_inputs", "relu6_net"]


def _bn(h, name, axes=(1,)):
    return PF.batch_normalization(h, axes=list(axes), batch_stat=False, name=name)


def attention(tokens):
    """(N, T, D) -> (N, T, D): one causal self-attention block with a feed-forward layer."""
    n, t, d = tokens.shape
    causal = np.triu(np.full((t, t), -1e4, np.float32), k=1).reshape(1, t, t)
    mask = nn.Variable.from_numpy_array(causal)  # a constant the graph holds, not an input
    positions = nn.Variable.from_numpy_array(
        np.sin(np.arange(t * d, dtype=np.float32).reshape(1, t, d) / 7.0))
    h = F.add2(tokens, F.broadcast(positions, (n, t, d)))
    q = PF.affine(h, d, base_axis=2, name="q")
    k = PF.affine(h, d, base_axis=2, name="k")
    v = PF.affine(h, d, base_axis=2, name="v")
    scores = F.batch_matmul(q, k, transpose_b=True) * (1.0 / np.sqrt(d))
    weights = F.softmax(F.add2(scores, F.broadcast(mask, (n, t, t))), axis=2)
    h = F.add2(h, F.batch_matmul(weights, v))
    h = F.relu(_bn(PF.affine(h, 2 * d, base_axis=2, name="ff1"), "ff1-bn", axes=(2,)))
    h = F.add2(h[:, :, :d], PF.affine(h, d, base_axis=2, name="ff2"))
    return PF.layer_normalization(h, batch_axis=(0, 1), name="norm")


def lstm(sequence, hidden=6):
    """(N, T, D) -> (N, hidden): an LSTM cell over T steps from zero states h0, c0."""
    n, t, _ = sequence.shape
    h = nn.Variable.from_numpy_array(np.zeros((n, hidden), np.float32))  # zero-state constants
    c = nn.Variable.from_numpy_array(np.zeros((n, hidden), np.float32))
    for step in range(t):
        x = F.reshape(F.slice(sequence, (0, step, 0), (n, step + 1, sequence.shape[2])), (n, -1))
        gates = PF.affine(F.concatenate(x, h, axis=1), 4 * hidden, name="cell")  # shared weights
        i, f, g, o = F.split(F.reshape(gates, (n, 4, hidden)), axis=1)
        c = F.add2(F.mul2(F.sigmoid(f), c), F.mul2(F.sigmoid(i), F.tanh(g)))
        h = F.mul2(F.sigmoid(o), F.tanh(c))
    return PF.affine(h, hidden, name="head")


def noisy_dqn(image, actions=4):
    """(N, C, H, W) -> (N, actions): conv + BN trunk, a NoisyNet affine head (w + sigma * eps)."""
    h = F.relu(_bn(PF.convolution(image, 8, (3, 3), pad=(1, 1), name="c1"), "c1-bn"))
    h = F.relu(_bn(PF.convolution(h, 8, (3, 3), stride=(2, 2), pad=(1, 1), name="c2"), "c2-bn"))
    h = F.reshape(h, (h.shape[0], -1))
    features = h.shape[1]
    rng = np.random.RandomState(features)
    mu = nn.parameter.get_parameter_or_create("noisy/mu", (features, actions), nn.initializer.NormalInitializer(
        np.sqrt(2.0 / features), rng=rng))
    sigma = nn.parameter.get_parameter_or_create("noisy/sigma", (features, actions),
                                                 nn.initializer.ConstantInitializer(0.05))
    w = F.add2(mu, F.mul2(sigma, F.randn(shape=(features, actions))))  # new noise every forward
    return F.affine(h, w)


def concat_bn(image):
    """Two convolutions concatenated, then a BN (which has nothing to fold into), an SE block."""
    a = PF.convolution(image, 4, (3, 3), pad=(1, 1), name="left")
    b = PF.convolution(image, 4, (1, 1), name="right")
    h = F.relu(_bn(F.concatenate(a, b, axis=1), "concat-bn"))
    se = F.sigmoid(PF.affine(F.mean(h, axis=(2, 3)), 8, name="se"))
    h = F.mul2(h, F.reshape(se, (h.shape[0], 8, 1, 1)))
    h = F.relu(_bn(PF.convolution(h, 6, (3, 3), pad=(1, 1), name="out"), "out-bn"))
    return F.average_pooling(h, h.shape[2:])


def two_inputs(image, taus):
    """An image trunk and a vector of quantile fractions (IQN-style), joined by a product."""
    h = F.relu(_bn(PF.convolution(image, 8, (3, 3), pad=(1, 1), name="trunk"), "trunk-bn"))
    h = F.reshape(F.average_pooling(h, h.shape[2:]), (h.shape[0], 8))
    embedded = F.relu(PF.affine(F.cos(taus * np.pi), 8, name="tau"))
    return PF.affine(F.mul2(h, embedded), 3, name="quantiles")


def relu6_net(image):
    """Inverted-residual blocks with ReLU6, a hard-sigmoid SE gate and a Swish head."""
    h = F.relu6(_bn(PF.convolution(image, 8, (3, 3), pad=(1, 1), name="stem"), "stem-bn"))
    r = F.relu6(_bn(PF.convolution(h, 16, (1, 1), name="expand"), "expand-bn"))
    r = F.relu6(_bn(PF.depthwise_convolution(r, (3, 3), pad=(1, 1), name="dw"), "dw-bn"))
    gate = F.hard_sigmoid(PF.affine(F.mean(r, axis=(2, 3)), 16, name="gate"))
    r = F.mul2(r, F.reshape(gate, (r.shape[0], 16, 1, 1)))
    h = F.add2(h, _bn(PF.convolution(r, 8, (1, 1), name="project"), "project-bn"))
    h = F.swish(_bn(PF.convolution(h, 12, (1, 1), name="head"), "head-bn"))
    return PF.affine(F.average_pooling(h, h.shape[2:]), 5, name="fc")
