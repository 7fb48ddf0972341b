"""``gcverify convert``: verified conversions are written and run in NNabla's own tools; a
wrong converter is refused; every bad argument is a clear error (exit 2) that leaves an
existing output as it was and no temporary file behind."""
import os
import subprocess
import sys
from collections import OrderedDict

import nnabla as nn
import numpy as np
import pytest

from converters.graph_view import GraphView
from converters.layout_emulation import cpu_runnable
from gcverify.cli import main
from gcverify.verify.nnp_file import load_network

BIN = os.path.dirname(sys.executable)


def convert(capsys, *argv):
    """``gcverify convert`` in this process: (exit status, stdout, stderr)."""
    status = main(["convert"] + [str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def infer_with_loader(path, data, network="inference"):
    """What NNabla's own loader computes with the file (in a private scope)."""
    from nnabla.utils.nnp_graph import NnpLoader
    with nn.parameter_scope("", OrderedDict()):
        net = NnpLoader(str(path)).get_network(network, batch_size=data.shape[0])
        x, y = list(net.inputs.values())[0], list(net.outputs.values())[0]
        x.d = data
        y.forward()
        return y.d.copy(), GraphView([y], {}).histogram()


def leftovers(directory):
    return sorted(p for p in os.listdir(directory) if p.startswith("."))


def test_bn_fold_of_a_training_and_inference_file_runs_to_the_same_outputs_in_nnablas_tools(
        train_and_infer, tmp_path):
    path, data, expected = train_and_infer
    out = tmp_path / "folded.nnp"
    done = subprocess.run([sys.executable, "-m", "gcverify", "convert", str(path), "-o", str(out),
                           "--with", "bn_fold"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: bn_fold on network 'inference'" in done.stdout
    assert "the written file reloads to identical outputs" in done.stdout
    assert "loading {} ...".format(path) in done.stderr and "verifying" in done.stderr
    folded, histogram = infer_with_loader(out, data)
    assert "BatchNormalization" not in histogram and histogram["Convolution"] == 2
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    # NNabla's command line runs the file too: one float32 file in, one file per sample out
    x_bin, prefix = tmp_path / "x.bin", tmp_path / "result"
    data.tofile(str(x_bin))
    infer = subprocess.run([os.path.join(BIN, "nnabla_cli"), "infer", "-c", str(out), "-b", "-1",
                            "-o", str(prefix), str(x_bin)], capture_output=True, text=True)
    assert infer.returncode == 0, infer.stdout + infer.stderr
    by_cli = np.stack([np.fromfile("{}_{}.bin".format(prefix, i), np.float32) for i in range(len(data))])
    np.testing.assert_array_equal(by_cli, folded)
    assert not leftovers(tmp_path)


def test_channel_last_output_documents_its_nhwc_input_in_the_executor(train_and_infer, tmp_path, capsys):
    path, data, expected = train_and_infer
    out = tmp_path / "tensorcore.nnp"
    status, stdout, _ = convert(capsys, path, "-o", out, "--with", "bn_fold,channel_last")
    assert status == 0, stdout
    assert "feed x_nhwc (2, 8, 8, 3) (layout NHWC: the original's axes transposed by (0, 2, 3, 1))" in stdout
    loaded = load_network(str(out))
    assert loaded.data_names == ["x_nhwc"] and loaded.output_names == ["y"]
    functions = GraphView(loaded.outputs, {}).functions
    assert all(f.info.args["channel_last"] for f in functions if f.info.type_name == "Convolution")
    assert not any(f.info.type_name == "BatchNormalization" for f in functions)
    loaded.inputs[0].d = np.transpose(data, (0, 2, 3, 1))
    y = cpu_runnable(loaded.outputs, loaded.parameters)[0]  # cudnn runs it natively
    y.forward()
    np.testing.assert_allclose(y.d, expected, rtol=2e-4, atol=2e-5 * np.abs(expected).max())


def test_a_planted_wrong_converter_is_refused_and_the_existing_output_survives(
        train_and_infer, planted, tmp_path, capsys):
    path, _, _ = train_and_infer
    out = tmp_path / "out.nnp"
    out.write_bytes(b"the file that was here")
    status, stdout, _ = convert(capsys, path, "-o", out, "--with", "scaled_weight",
                                "--converters-from", planted)
    assert status == 1
    assert "[numeric] outputs differ" in stdout
    assert "not written: 1 check(s) failed on seeded inputs (seed 0); the existing {} is untouched".format(
        out) in stdout
    assert out.read_bytes() == b"the file that was here" and not leftovers(tmp_path)
    status, stdout, _ = convert(capsys, path, "-o", out, "--with", "scaled_weight",
                                "--converters-from", planted, "--force")
    assert status == 1 and "written anyway (--force)" in stdout
    assert out.read_bytes().startswith(b"PK") and not leftovers(tmp_path)  # an .nnp is a zip


def test_own_inputs_are_used_and_may_change_the_batch_size(train_and_infer, tmp_path, capsys):
    path, _, _ = train_and_infer
    data = tmp_path / "data.npz"
    np.savez(str(data), x=np.random.RandomState(5).uniform(-3, 3, (3, 3, 8, 8)).astype(np.float32))
    status, stdout, stderr = convert(capsys, path, "-o", tmp_path / "o.nnp", "--with", "bn_fold",
                                     "--inputs", data)
    assert status == 0, stdout
    assert "inputs from {}".format(data) in stdout and "inputs x (3, 3, 8, 8)" in stderr
    positional = tmp_path / "positional.npz"
    np.savez(str(positional), np.zeros((2, 3, 8, 8), np.float32))  # arr_0
    assert convert(capsys, path, "-o", tmp_path / "p.nnp", "--with", "bn_fold", "--inputs", positional,
                   "--quiet")[0] == 0


def test_progress_shows_each_step_with_its_time_and_quiet_silences_it(train_and_infer, tmp_path, capsys):
    path, _, _ = train_and_infer
    _, _, stderr = convert(capsys, path, "-o", tmp_path / "o.nnp", "--with", "bn_fold,identity")
    for step in ("loading", "converting: step 1/2 bn_fold", "converting: step 2/2 identity", "verifying",
                 "writing"):
        assert any(line.startswith("gcverify convert: " + step) and line.endswith(" s)")
                   for line in stderr.splitlines()), (step, stderr)
    assert "[nnabla][INFO]" not in stderr
    assert convert(capsys, path, "-o", tmp_path / "o.nnp", "--with", "bn_fold", "-q")[2] == ""


def _corrupt(tmp_path):
    bad = tmp_path / "corrupt.nnp"
    bad.write_bytes(b"not a zip")
    return bad


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(str(path), **arrays)
    return path


BAD = [
    ("unknown converter", lambda p, t: [p, "--with", "bn_fold,bn_fol"],
     "unknown converter 'bn_fol'; known converters: bn_fold, bn_linear"),
    ("empty converter list", lambda p, t: [p, "--with", ","], "--with needs at least one converter name"),
    ("missing file", lambda p, t: [t / "missing.nnp", "--with", "bn_fold"], "missing.nnp: no such file"),
    ("corrupt file", lambda p, t: [_corrupt(t), "--with", "bn_fold"],
     "not a readable .nnp file (BadZipFile: File is not a zip file): {t}/corrupt.nnp"),
    ("unknown network", lambda p, t: [p, "--with", "bn_fold", "--network", "validation"],
     "has no network 'validation' (it holds: training, inference)"),
    ("output directory missing", lambda p, t: [p, "--with", "bn_fold", "-o", t / "no" / "x.nnp"],
     "directory {t}/no does not exist"),
    ("output is a directory", lambda p, t: [p, "--with", "bn_fold", "-o", t],
     "the output must end in .nnp"),
    ("output directory named .nnp", lambda p, t: [p, "--with", "bn_fold", "-o", _dir(t / "d.nnp")],
     "is a directory, not a file"),
    ("output is the input", lambda p, t: [p, "--with", "bn_fold", "-o", p], "is the input file"),
    ("converters module missing", lambda p, t: [p, "--with", "bn_fold", "--converters-from", t / "no.py"],
     "--converters-from {t}/no.py: no such file"),
    ("converters module that does not import", lambda p, t: [p, "--with", "bn_fold", "--converters-from",
                                                             "no_such_module_here"], "cannot import it"),
    ("converters module marking nothing", lambda p, t: [p, "--with", "bn_fold", "--converters-from",
                                                        "gcverify.core.layouts"], "it marks no converter"),
    ("unknown device", lambda p, t: [p, "--with", "bn_fold", "--device", "tpu"], "--device: unknown device"),
    ("no timed rounds", lambda p, t: [p, "--with", "bn_fold", "--speed-repeats", "0"],
     "--speed-repeats must be >= 1, got 0"),
    ("inputs without the input's name", lambda p, t: [p, "--with", "bn_fold", "--inputs",
                                                      _npz(t, image=np.zeros((2, 3, 8, 8)))],
     "no array for input 'x' (shape (2, 3, 8, 8)); it holds: image"),
    ("inputs of the wrong shape", lambda p, t: [p, "--with", "bn_fold", "--inputs",
                                                _npz(t, x=np.zeros((2, 8, 8, 3)))],
     "array 'x' has shape (2, 8, 8, 3); input 'x' takes (2, 3, 8, 8)"),
    ("inputs that are not numbers", lambda p, t: [p, "--with", "bn_fold", "--inputs",
                                                  _npz(t, x=np.array(["a", "b"]))], "is not a batch of numbers"),
]


def _dir(path):
    path.mkdir()
    return path


@pytest.mark.parametrize("what, argv, message", BAD, ids=[b[0] for b in BAD])
def test_every_bad_argument_is_a_clear_error_and_changes_nothing(train_and_infer, tmp_path, capsys,
                                                                   what, argv, message):
    path, _, _ = train_and_infer
    out = tmp_path / "out.nnp"
    out.write_bytes(b"existing")
    args = argv(path, tmp_path)
    if "-o" not in args:
        args += ["-o", out]
    before = sorted(os.listdir(tmp_path))
    status, stdout, stderr = convert(capsys, *args)
    assert status == 2, (stdout, stderr)
    expected = message.format(t=tmp_path)
    assert "gcverify convert: error: " in stderr and expected in stderr, stderr
    assert ": done (" not in "".join(stderr.splitlines()[-2:])  # a step that failed says so
    assert out.read_bytes() == b"existing"
    assert sorted(os.listdir(tmp_path)) == before and not leftovers(tmp_path)


def test_a_missing_required_argument_is_a_usage_error(train_and_infer):
    path, _, _ = train_and_infer
    done = subprocess.run([os.path.join(BIN, "gcverify"), "convert", str(path), "--with", "bn_fold"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "the following arguments are required: -o/--output" in done.stderr


def test_onnx_export_is_checked_in_onnxruntime_or_skipped_with_the_reason(train_and_infer, tmp_path, capsys,
                                                                          monkeypatch):
    from gcverify.deploy.onnx_export import onnx_unavailable
    path, data, expected = train_and_infer
    if onnx_unavailable() is None:
        import onnxruntime
        status, stdout, _ = convert(capsys, path, "-o", tmp_path / "f.nnp", "--with", "bn_fold",
                                    "--export", "onnx")
        assert status == 0 and "[onnx] onnxruntime against the original: max abs" in stdout, stdout
        session = onnxruntime.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"x": data})[0], expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max())
        # NNabla 1.39's exporter writes channel_last=True convolutions as channel-first ONNX
        # Conv: the check catches it and nothing is written
        status, stdout, _ = convert(capsys, path, "-o", tmp_path / "cl.nnp", "--with", "channel_last",
                                    "--export", "onnx")
        assert status == 1 and "not written: onnxruntime could not run the exported ONNX model" in stdout
        assert not (tmp_path / "cl.nnp").exists() and not (tmp_path / "cl.onnx").exists()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as where it is not installed
    status, stdout, _ = convert(capsys, path, "-o", tmp_path / "s.nnp", "--with", "bn_fold",
                                "--export", "onnx", "-q")
    assert status == 0 and "onnx: skipped: " in stdout and "is not importable" in stdout
    assert (tmp_path / "s.nnp").exists() and not (tmp_path / "s.onnx").exists()
    assert not leftovers(tmp_path)
