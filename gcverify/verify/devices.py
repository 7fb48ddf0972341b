"""Devices of the matrix: ``cpu`` and ``cudnn``.

A :class:`Device` knows how to make its NNabla context, how to synchronise before reading
a clock, and why it cannot run here (a precise skip reason). Which GPU an xdist worker uses
is a pure function of the worker id and the GPU list (:func:`gpu_for_worker`): worker gwN
takes GPU N modulo the list, so ``-n 4`` over two GPUs puts two workers on each.

Hardware probes are injectable (``probe``) so all of this is testable without a GPU.
"""
import importlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["DEVICE_NAMES", "Device", "CudaProbe", "parse_devices", "parse_gpus",
           "gpu_for_worker", "UnknownDeviceError"]

DEVICE_NAMES = ("cpu", "cudnn")
_ALIASES = {"both": ("cpu", "cudnn"), "all": ("cpu", "cudnn")}


class UnknownDeviceError(ValueError):
    pass


def parse_devices(text):
    """``"cpu"``, ``"cudnn"``, ``"both"`` or a comma list -> device names, in order, once each."""
    names = []
    for token in (text or "cpu").split(","):
        token = token.strip().lower()
        if not token:
            continue
        expanded = _ALIASES.get(token, (token,))
        for name in expanded:
            if name not in DEVICE_NAMES:
                raise UnknownDeviceError("unknown device {!r}; choose from {} (or both)".format(
                    token, ", ".join(DEVICE_NAMES)))
            if name not in names:
                names.append(name)
    if not names:
        raise UnknownDeviceError("no device given; choose from {} (or both)".format(
            ", ".join(DEVICE_NAMES)))
    return names


def parse_gpus(text):
    """``"0,2"`` -> ``[0, 2]``; empty -> None (find the visible GPUs)."""
    if text is None or not str(text).strip():
        return None
    try:
        gpus = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise UnknownDeviceError("--gc-gpus takes comma-separated GPU ids like 0,1; got {!r}".format(
            text)) from None
    if any(g < 0 for g in gpus):
        raise UnknownDeviceError("--gc-gpus: GPU ids are >= 0; got {!r}".format(text))
    return gpus


def gpu_for_worker(worker_id, gpus):
    """The GPU for an xdist worker: ``gwN`` -> ``gpus[N % len(gpus)]``; no worker -> gpus[0]."""
    gpus = list(gpus)
    if not gpus:
        raise ValueError("no GPU to choose from")
    match = re.fullmatch(r"gw(\d+)", worker_id or "")
    return gpus[int(match.group(1)) % len(gpus)] if match else gpus[0]


class CudaProbe:
    """What the machine offers for cudnn; each question returns a value or raises."""

    def __init__(self, import_module=importlib.import_module, run=subprocess.run):
        self._import, self._run = import_module, run

    def extension(self):
        """Import error text, or None when ``nnabla_ext.cudnn`` imports."""
        try:
            self._import("nnabla_ext.cudnn")
            return None
        except Exception as e:  # a broken CUDA install raises OSError/RuntimeError too
            return "{}: {}".format(type(e).__name__, e)

    def device_count(self):
        cuda = self._import("nnabla_ext.cuda")
        init = getattr(cuda, "init", None)
        count = getattr(init, "get_device_count", None) or getattr(cuda, "get_device_count")
        return int(count())

    def compute_capability(self, gpu):
        """(major, minor) of ``gpu`` from nvidia-smi, or None when it cannot tell."""
        if shutil.which("nvidia-smi") is None:
            return None
        out = self._run(["nvidia-smi", "-i", str(gpu), "--query-gpu=compute_cap",
                         "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        match = re.search(r"(\d+)\.(\d+)", out.stdout or "")
        return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class Device:
    """One device of the matrix, bound to a GPU id for cudnn."""

    name: str
    gpu: Optional[int] = None
    probe: Optional[CudaProbe] = None

    @classmethod
    def select(cls, name, worker_id=None, gpus=None, probe=None):
        """The device ``name`` as worker ``worker_id`` should use it (GPU by worker id)."""
        if name not in DEVICE_NAMES:
            raise UnknownDeviceError("unknown device {!r}; choose from {}".format(
                name, ", ".join(DEVICE_NAMES)))
        if name == "cpu":
            return cls("cpu")
        probe = probe or CudaProbe()
        if gpus is None and probe.extension() is None:
            try:
                gpus = list(range(probe.device_count()))
            except Exception:
                gpus = []
        return cls(name, gpu_for_worker(worker_id, gpus) if gpus else None, probe)

    @property
    def label(self):
        return self.name if self.gpu is None else "{}:{}".format(self.name, self.gpu)

    def unavailable(self):
        """Why this device cannot run here (a precise skip reason), or None."""
        if self.name == "cpu":
            return None
        error = self.probe.extension()
        if error is not None:
            return ("cudnn unavailable: nnabla_ext.cudnn is not installed ({}); install "
                    "nnabla-ext-cuda120==1.39.0 (pip install '.[cuda]')".format(error))
        try:
            count = self.probe.device_count()
        except Exception as e:
            return "cudnn unavailable: cannot count GPUs ({}: {})".format(type(e).__name__, e)
        if count == 0:
            return "cudnn unavailable: no GPU visible (check CUDA_VISIBLE_DEVICES and the driver)"
        if self.gpu is None or self.gpu >= count:
            return "cudnn unavailable: GPU {} requested but only {} visible".format(self.gpu, count)
        return None

    def speed_unavailable(self, speed):
        """Why the speed expectation ``speed`` cannot be checked on this device, or None."""
        reason = self.unavailable()
        if reason or not speed.min_compute_capability:
            return reason
        cc = self.probe.compute_capability(self.gpu)
        if cc is None:
            return "speed check skipped: compute capability of GPU {} unknown".format(self.gpu)
        if tuple(cc) < tuple(speed.min_compute_capability):
            return ("speed check skipped: GPU {} has compute capability {}.{}, older than Volta "
                    "({}.{}) which NHWC TensorCore kernels need".format(
                        self.gpu, cc[0], cc[1], *speed.min_compute_capability))
        return None

    def context(self, type_config="float"):
        from nnabla.ext_utils import get_extension_context
        if self.name == "cpu":
            return get_extension_context("cpu", type_config=type_config)
        return get_extension_context("cudnn", device_id=str(self.gpu), type_config=type_config)

    def synchronizer(self) -> Callable[[], None]:
        """A function that waits for the device to finish queued work (no-op on cpu)."""
        if self.name == "cpu":
            return lambda: None
        cuda = importlib.import_module("nnabla_ext.cuda")
        gpu = str(self.gpu)
        return lambda: cuda.device_synchronize(gpu)

