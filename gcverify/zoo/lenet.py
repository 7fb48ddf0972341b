"""LeNet exactly as seed 003 defines it (12 functions in test mode)."""
import nnabla.functions as F
import nnabla.parametric_functions as PF


def lenet(image, test=True):
    h = PF.convolution(image, 16, (5, 5), (1, 1), with_bias=False, name="conv1")
    h = PF.batch_normalization(h, batch_stat=not test, name="conv1-bn")
    h = F.max_pooling(h, (2, 2))
    h = F.relu(h)
    h = PF.convolution(h, 16, (5, 5), (1, 1), with_bias=True, name="conv2")
    h = PF.batch_normalization(h, batch_stat=not test, name="conv2-bn")
    h = F.max_pooling(h, (2, 2))
    h = F.relu(h)
    h = PF.affine(h, 10, with_bias=False, name="fc1")
    h = PF.batch_normalization(h, batch_stat=not test, name="fc1-bn")
    h = F.relu(h)
    return PF.affine(h, 10, with_bias=True, name="fc2")
