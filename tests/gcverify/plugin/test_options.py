"""The plugin's options in real pytest sessions (pytester): defaults, ini keys, bad values."""
import json

import pytest





def test_matrix_ids_and_table(project):
    result = project.runpytest("--gc-models=tiny", "--gc-converters=identity,relu_to_leaky,bn_fold",
                               "--collect-only", "-q")
    ids = [line.split("[")[1].rstrip("]") for line in result.outlines if "[" in line]
    assert ids == ["bn_fold-tiny-cpu", "identity-tiny-cpu", "relu_to_leaky-tiny-cpu"]


def test_table_printed_with_every_row(project):
    result = project.runpytest("--gc-models=tiny,lenet", "--gc-converters=identity,relu_to_leaky",
                               "--gc-device=cpu")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*= gcverify matrix =*", "converter*model*device*outcome*",
                                 "identity*tiny*cpu*passed*",
                                 "relu_to_leaky*lenet*cpu*passed*-3 ReLU, +3 LeakyReLU*",
                                 "4 rows: 4 passed"])


def test_ini_keys_work_and_the_command_line_wins(project):
    project.makeini("[pytest]\ngc_models = tiny\ngc_converters = identity\n")
    project.runpytest("-q").assert_outcomes(passed=1)
    project.runpytest("-q", "--gc-converters=relu_to_leaky,identity").assert_outcomes(passed=2)


@pytest.mark.parametrize("option, message", [
    ("--gc-models=tiny,resnet5", "*gcverify: unknown model 'resnet5'; known models: lenet, resnet50*tiny*"),
    ("--gc-device=gpu", "*gcverify: unknown device 'gpu'; choose from cpu, cudnn (or both)*"),
    ("--gc-converters=bn_fould", "*gcverify: --gc-converters: 'bn_fould' matches no converter; known converters: bn_fold*"),
    ("--gc-gpus=one", "*gcverify: --gc-gpus takes comma-separated GPU ids*"),
    ("--gc-report=/nonexistent/dir/r.json", "*gcverify: --gc-report /nonexistent/dir/r.json: directory /nonexistent/dir does not exist*"),
    ("--gc-speed-repeats=0", "*--gc-speed-repeats must be >= 1*"),
    ("--gc-saved=some", "*gcverify: --gc-saved takes auto, all or off, got 'some'*"),
])
def test_bad_option_values_are_usage_errors(project, option, message):
    result = project.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_rows_carry_the_saved_check_and_gc_saved_turns_it_off(project):
    rows = {}
    for mode in ("auto", "off"):
        project.runpytest("--gc-models=tiny", "--gc-converters=identity", "--gc-saved=" + mode,
                          "--gc-report=r.json").assert_outcomes(passed=1)
        rows[mode] = json.loads(project.path.joinpath("r.json").read_text())["rows"][0]
    assert rows["auto"]["saved"] == "identical" and rows["auto"]["saved_bytes"] > 0
    assert rows["off"]["saved"] == "off" and "saved_bytes" not in rows["off"]


def test_cudnn_here_skips_every_row_with_the_reason(project):
    result = project.runpytest("--gc-models=tiny", "--gc-converters=identity,bn_fold",
                               "--gc-device=cudnn", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["2 rows: 2 skipped",
                                 "*SKIPPED [[]2]*cudnn unavailable: nnabla_ext.cudnn is not installed*"])


def test_both_devices_keep_collection_and_skip_only_cudnn(project):
    result = project.runpytest("--gc-models=tiny", "--gc-converters=identity", "--gc-device=both")
    result.assert_outcomes(passed=1, skipped=1)


def test_peer_failures_are_expected_failures_with_diagnosis(project):
    result = project.runpytest("--gc-models=lenet", "--gc-converters=nnabla_channel_last", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*expected failure of NNabla's built-in (peer)*raised IndexError*"])


def test_json_report_and_junit_properties(project):
    project.mkdir("out")
    result = project.runpytest("--gc-models=tiny", "--gc-converters=identity,relu_to_leaky",
                               "--gc-report=out/r.json", "--junitxml=out/j.xml")
    result.assert_outcomes(passed=2)
    doc = json.loads((project.path / "out" / "r.json").read_text())
    assert doc["format"] == "gcverify-report"
    assert [r["id"] for r in doc["rows"]] == ["identity-tiny-cpu", "relu_to_leaky-tiny-cpu"]
    assert doc["rows"][1]["removed"] == {"ReLU": 1} and doc["rows"][1]["outcome"] == "passed"
    xml = (project.path / "out" / "j.xml").read_text()
    assert 'name="gc_converter" value="relu_to_leaky"' in xml and 'name="gcverify.row"' in xml


def test_plugin_can_be_disabled(project):
    result = project.runpytest("-p", "no:gcverify", "--gc-models=tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the option no longer exists
    result.stderr.fnmatch_lines(["*unrecognized arguments: --gc-models=tiny*"])


def test_graphs_before_and_after_are_written(project):
    project.runpytest("--gc-models=tiny", "--gc-converters=relu_to_leaky",
                      "--gc-graphs=pics").assert_outcomes(passed=1)
    after = (project.path / "pics" / "relu_to_leaky-tiny-cpu-after.dot").read_text()
    before = (project.path / "pics" / "relu_to_leaky-tiny-cpu-before.dot").read_text()
    assert "LeakyReLU" in after and "LeakyReLU" not in before
    assert after.startswith("digraph") and "ReLU" in before


def test_a_wrong_conversion_fails_with_numbers_and_the_diverging_function(project, monkeypatch):
    monkeypatch.setenv("GC_PLANT", "wrong")  # relu_to_leaky also scales the second conv's weights
    result = project.runpytest("--gc-models=tiny", "--gc-converters=relu_to_leaky")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "relu_to_leaky on tiny (cpu): 1 check(s) failed",
        "[[]numeric] outputs differ: max abs *",
        "*first divergence at Convolution 'c2/conv' (output 2x2x8x8)*",
        "*would pass at *x the noise floor (the limit is 4x)*",
        "*relu_to_leaky*tiny*cpu*failed*[[]numeric] outputs differ*"])


def test_a_model_that_cannot_build_fails_every_row_even_peers_and_is_built_once(project, downstream_conftest):
    project.makeconftest(downstream_conftest + '''

@gcverify.model("broken")
def broken(seed=0):
    with open("builds.txt", "a") as f:
        f.write("built\\n")
    raise RuntimeError("weights file missing")
''')
    result = project.runpytest("--gc-models=broken", "--gc-converters=identity,nnabla_bn_fold,bn_fold")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*the model could not be built and run: RuntimeError: weights file missing*"])
    # the row's note leads with the reason, not with a path that would push it out of the column
    result.stdout.fnmatch_lines(["identity * broken * failed * the model could not be built and run: Runt*"])
    assert (project.path / "builds.txt").read_text() == "built\n"  # once per process, not once per row


def _save_model(model, path):
    from nnabla.utils.save import save
    from gcverify.core.model import scope_holding
    path.parent.mkdir(parents=True, exist_ok=True)
    with scope_holding(model.params):
        save(str(path), {"networks": [{"name": "net", "batch_size": model.inputs[0].shape[0],
                                       "outputs": {"y": model.outputs[0]}, "names": {"x": model.inputs[0]}}],
                         "executors": [{"name": "run", "network": "net", "data": ["x"], "output": ["y"]}]})


def test_two_files_of_one_name_in_two_folders_get_their_own_ids_and_rows(project):
    from gcverify.testing import zoo_model
    _save_model(zoo_model("lenet", seed=1), project.path / "a" / "model.nnp")
    _save_model(zoo_model("lenet", seed=2), project.path / "b" / "model.nnp")
    result = project.runpytest("--gc-models=a/model.nnp,b/model.nnp", "--gc-converters=identity",
                               "--gc-report=r.json", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*identity-a/model.nnp-cpu*PASSED*", "*identity-b/model.nnp-cpu*PASSED*"])
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    assert sorted(r["model"] for r in rows) == ["a/model.nnp", "b/model.nnp"]
