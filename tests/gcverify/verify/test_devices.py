"""Device selection and availability, with the hardware probes replaced by data."""
import types

import pytest

from gcverify.verify.devices import CudaProbe, Device, gpu_for_worker, parse_devices, parse_gpus, UnknownDeviceError
from gcverify.core.expectations import Speed

TENSOR_CORE = Speed("cudnn", min_ratio=1.2, type_config="half", min_compute_capability=(7, 0))


@pytest.mark.parametrize("text, names", [("cpu", ["cpu"]), ("cudnn", ["cudnn"]),
                                         ("both", ["cpu", "cudnn"]), ("cudnn, cpu,cudnn", ["cudnn", "cpu"]),
                                         (None, ["cpu"])])
def test_parse_devices(text, names):
    assert parse_devices(text) == names


@pytest.mark.parametrize("text", ["gpu", "cpu,tpu", " , "])
def test_unknown_device_names_the_choices(text):
    with pytest.raises(UnknownDeviceError, match="choose from cpu, cudnn"):
        parse_devices(text)


def test_parse_gpus():
    assert parse_gpus("0, 2") == [0, 2]
    assert parse_gpus("") is None
    with pytest.raises(UnknownDeviceError, match="comma-separated GPU ids"):
        parse_gpus("first")
    with pytest.raises(UnknownDeviceError, match=">= 0"):
        parse_gpus("-1")


@pytest.mark.parametrize("worker, gpus, expected", [
    ("gw0", [0, 1], 0), ("gw1", [0, 1], 1), ("gw2", [0, 1], 0), ("gw5", [0, 1, 2], 2),
    ("gw3", [4, 6], 6), (None, [3, 1], 3), ("master", [2], 2)])
def test_worker_n_uses_gpu_n_modulo_the_list(worker, gpus, expected):
    assert gpu_for_worker(worker, gpus) == expected


def test_no_gpu_to_choose_from():
    with pytest.raises(ValueError):
        gpu_for_worker("gw0", [])


class FakeProbe(CudaProbe):
    def __init__(self, installed=True, count=2, capability=(7, 0)):
        self.installed, self.count, self.capability = installed, count, capability

    def extension(self):
        return None if self.installed else "ModuleNotFoundError: No module named 'nnabla_ext.cudnn'"

    def device_count(self):
        return self.count

    def compute_capability(self, gpu):
        return self.capability


def test_cpu_is_always_available():
    assert Device.select("cpu").unavailable() is None


def test_cudnn_missing_extension_reason():
    d = Device.select("cudnn", "gw0", probe=FakeProbe(installed=False))
    assert "nnabla_ext.cudnn is not installed" in d.unavailable()


def test_cudnn_without_gpus_reason():
    d = Device.select("cudnn", "gw1", probe=FakeProbe(count=0))
    assert d.gpu is None and "no GPU visible" in d.unavailable()


def test_cudnn_found_gpus_are_split_over_workers():
    probe = FakeProbe(count=2)
    assert [Device.select("cudnn", "gw{}".format(i), probe=probe).gpu for i in range(4)] == [0, 1, 0, 1]
    assert Device.select("cudnn", "gw3", gpus=[5, 7], probe=probe).label == "cudnn:7"


def test_cudnn_requested_gpu_not_visible():
    d = Device.select("cudnn", "gw0", gpus=[3], probe=FakeProbe(count=2))
    assert "GPU 3 requested but only 2 visible" in d.unavailable()


def test_speed_check_needs_volta():
    old = Device.select("cudnn", "gw0", probe=FakeProbe(capability=(6, 1)))
    assert old.unavailable() is None
    assert "compute capability 6.1, older than Volta" in old.speed_unavailable(TENSOR_CORE)
    assert Device.select("cudnn", "gw0", probe=FakeProbe(capability=(7, 5))).speed_unavailable(TENSOR_CORE) is None


def test_probe_reads_compute_capability_from_nvidia_smi(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/" + name)
    seen = []

    def run(cmd, **kw):
        seen.append(cmd)
        return types.SimpleNamespace(stdout="8.6\n")
    assert CudaProbe(run=run).compute_capability(1) == (8, 6)
    assert "-i" in seen[0] and "1" in seen[0]


def test_probe_reports_import_errors():
    def fail(name):
        raise ImportError("libcudart.so.12: cannot open shared object file")
    assert "libcudart" in CudaProbe(import_module=fail).extension()


def test_cpu_context_and_sync():
    d = Device.select("cpu")
    assert d.context().backend[0].startswith("cpu")
    assert d.synchronizer()() is None
