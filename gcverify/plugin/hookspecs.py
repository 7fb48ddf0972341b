"""Hooks a conftest.py may implement to configure gcverify."""
import pytest


@pytest.hookspec(firstresult=True)
def pytest_gcverify_cuda_probe(config):
    """Return the object gcverify asks about cudnn (``extension()``, ``device_count()``,
    ``compute_capability(gpu)``, as :class:`gcverify.verify.devices.CudaProbe`), e.g. a fake
    one so that tests of a GPU configuration run the same on machines with and without GPUs."""
