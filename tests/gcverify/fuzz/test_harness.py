"""The fuzz harness catches every kind of broken converter, shrinks it and writes a replayable test.

Each planted converter breaks one promise (silently wrong numbers, a changed parameter, a
write to the global scope, a rewired original graph, a crash, a refusal naming nothing, a
wrong number of outputs); the harness must report exactly that kind.
"""
import pathlib

import nnabla as nn
import nnabla.functions as F
import nnabla.parameter
import pytest

from converters.rewrite import GraphPass, run_passes
from gcverify.fuzz import (FORMER_NAMES, TARGETS, Conversion, FuzzTarget, check, failure_predicate,
                           fuzz_target, generate, is_clear_refusal, run_fuzz, shrink)
from gcverify.core.expectations import TOLERANCES
from gcverify.api import default_converters

PLANTED = '''
from converters.rewrite import GraphPass, run_passes
from gcverify.fuzz import FuzzTarget


class DropEps(GraphPass):
    """Silently wrong: every inference BN gets eps=1e-5, whatever it had."""

    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name == "BatchNormalization" and not f.info.args["batch_stat"]:
            return b.call("BatchNormalization", inputs, dict(f.info.args, eps=1e-5), len(f.outputs))
        return None


drop_eps = FuzzTarget("drop-eps", lambda m: run_passes([DropEps()], m.outputs, m.params).outputs)
'''


class DropEps(GraphPass):
    def rewrite(self, f, inputs, b, plan):
        if f.info.type_name == "BatchNormalization" and not f.info.args["batch_stat"]:
            return b.call("BatchNormalization", inputs, dict(f.info.args, eps=1e-5), len(f.outputs))
        return None


def _copy(model):
    return run_passes([GraphPass()], model.outputs, model.params).outputs


def _target(convert, **kw):
    return FuzzTarget("planted", convert, **kw)


def _bn_model():
    """A graph with a BatchNormalization whose eps is not the default."""
    for seed in range(200):
        r = generate(seed)
        if any(n["op"] == "BatchNormalization" and n["args"]["eps"] >= 0.1
               and not n["args"]["batch_stat"] for n in r.nodes):
            return r
    raise AssertionError("no seed below 200 gives a BN with a large eps")


def test_a_correct_copy_converts_every_graph():
    target = _target(_copy, may_refuse=False)
    report = run_fuzz(target, range(60))
    assert report.counts == {"converted": 60} and not report.failures


def test_silently_wrong_numbers_are_a_mismatch_and_shrink_to_the_culprit():
    target = _target(lambda m: run_passes([DropEps()], m.outputs, m.params).outputs)
    recipe = _bn_model()
    outcome = check(target, recipe.build())
    assert outcome.kind == "mismatch" and "max abs error" in outcome.message
    small = shrink(recipe, failure_predicate(target, "mismatch"))
    assert len(small) <= 2 and "BatchNormalization" in small.histogram()
    assert check(target, small.build()).kind == "mismatch"
    assert shrink(recipe, failure_predicate(target, "mismatch")).to_dict() == small.to_dict()


def test_changed_parameter_values_are_caught():
    def convert(model):
        first = next(iter(model.params.values()))
        first.d = first.d + 1.0
        return _copy(model)
    outcome = check(_target(convert), generate(0).build())
    assert outcome.kind == "changed-params" and "max change 1" in outcome.message


def test_writing_into_the_global_scope_is_caught():
    def convert(model):
        nnabla.parameter.set_parameter("planted/W", nn.Variable((1,)))
        return _copy(model)
    try:
        outcome = check(_target(convert), generate(0).build())
    finally:
        nnabla.parameter.pop_parameter("planted/W")
    assert outcome.kind == "changed-scope" and "planted/W" in outcome.message


def test_rewiring_the_original_graph_is_caught():
    def convert(model):
        x = model.inputs[0]
        x.rewire_on(F.relu(nn.Variable(x.shape)))  # grafts a ReLU under the input
        return [nn.Variable(o.shape) for o in model.outputs]
    outcome = check(_target(convert), generate(0).build())
    assert outcome.kind == "changed-graph" and "'ReLU': 1" in outcome.message


def test_running_the_converted_graph_must_not_write_the_original_parameters():
    def convert(model):
        # a BN switched to batch statistics updates the running mean/var it shares
        passes = [type("Train", (GraphPass,), {"rewrite": lambda self, f, i, b, plan: b.call(
            f.info.type_name, i, dict(f.info.args, batch_stat=True), len(f.outputs))
            if f.info.type_name == "BatchNormalization" else None})()]
        return run_passes(passes, model.outputs, model.params).outputs
    recipe = next(r for r in map(generate, range(200)) if any(
        n["op"] == "BatchNormalization" and not n["args"]["batch_stat"] for n in r.nodes)
        and not any(n["op"] == "BatchNormalization" and n["args"]["batch_stat"] for n in r.nodes))
    outcome = check(_target(convert), recipe.build())
    assert outcome.kind == "changed-params" and "running the converted graph" in outcome.message


@pytest.mark.parametrize("error, kind", [
    (KeyError("BatchNormalization"), "crash"),
    (RuntimeError("value error in setup_impl"), "crash"),
    (ValueError("cannot do that"), "unclear-refusal"),
])
def test_crashes_and_refusals_naming_nothing_fail(error, kind):
    def convert(model):
        raise error
    outcome = check(_target(convert), generate(0).build())
    assert outcome.kind == kind and type(error).__name__ in outcome.message


def test_a_refusal_naming_the_culprit_is_accepted_unless_the_target_must_convert():
    model = generate(0).build()
    culprit = model.outputs[0].parent.info.type_name

    def convert(m):
        raise NotImplementedError("{} is not supported here".format(culprit))
    assert check(_target(convert), model).status == "refused"
    assert check(_target(convert, may_refuse=False), model).kind == "unclear-refusal"


def test_what_counts_as_a_clear_refusal():
    model = generate(0).build()
    name = next(iter(model.params))
    assert is_clear_refusal(ValueError("parameter {} is shared".format(name)), model)
    assert is_clear_refusal(TypeError("inputs[0] is not 4-D"), model)
    assert not is_clear_refusal(ValueError("bad graph"), model)
    assert not is_clear_refusal(RuntimeError(name), model)


def test_wrong_outputs_are_caught():
    model = generate(4).build()
    assert check(_target(lambda m: _copy(m)[:-1] or [nn.Variable((1,))]), model).kind == "bad-outputs"


def test_output_layouts_are_undone_before_comparing():
    model = next(m for m in (generate(s).build() for s in range(100))
                 if len(m.outputs[0].shape) == 4 and m.outputs[0].shape[1] != m.outputs[0].shape[3])
    perm = [0, 2, 3, 1]

    def convert(m, perms):
        outs = _copy(m)
        return Conversion([F.transpose(outs[0], perm)] + outs[1:], output_perms=perms)
    assert check(_target(lambda m: convert(m, [perm])), model).status == "converted"
    assert not check(_target(lambda m: convert(m, None)), model).ok


def test_a_saved_reproducer_replays_the_failure(pytester):
    pytester.makepyfile(planted=PLANTED)
    pytester.syspathinsert()
    target = fuzz_target("planted:drop_eps")
    report = run_fuzz(target, range(40), save_dir=str(pytester.path / "regressions"),
                      target_ref="planted:drop_eps", max_failures=1)
    assert len(report.failures) == 1
    failure = report.failures[0]
    assert failure.path.endswith("test_fuzz_drop_eps_{}.py".format(failure.seed))
    assert len(failure.shrunk) <= failure.original_nodes
    source = pathlib.Path(failure.path).read_text()
    assert "generate(seed={})".format(failure.seed) in source and "BatchNormalization" in source
    result = pytester.runpytest("-p", "no:cacheprovider", failure.path)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mismatch*"])


def test_unknown_target_names_list_the_known_ones():
    with pytest.raises(LookupError, match="identity"):
        fuzz_target("no-such-target")
    with pytest.raises(LookupError, match="cannot load"):
        fuzz_target("no_such_module_here:x")
    assert fuzz_target("identity").tolerance == TOLERANCES["exact"]
    with pytest.raises(LookupError, match="prune is judged against a reference the fuzzer does not compute"):
        fuzz_target("prune")  # compared with the original, every pruned graph would be a mismatch


def test_targets_are_the_registry_entries_under_their_names():
    builtin = {s.name: s for s in default_converters()}
    for target in TARGETS:
        spec = builtin.get(target.name)
        if spec is not None:  # the same conversion code as the matrix row of that name
            assert target.convert is spec.convert and target.description == spec.description
    assert fuzz_target("fixed_point_weight").convert.func is builtin["fixed_point"].convert
    for former, name in FORMER_NAMES.items():  # saved reproducers and GC_FUZZ_TARGETS keep working
        assert fuzz_target(former) is fuzz_target(name)
    statistics = fuzz_target("statistics")  # any other built-in, fuzzed on demand
    assert statistics.convert is builtin["statistics"].convert
    assert fuzz_target("gcverify.builtin.ours:_BN_FOLD").convert is builtin["bn_fold"].convert


def test_command_line_shows_a_seed_and_soaks(capsys):
    from gcverify.fuzz.__main__ import main
    assert main(["--show", "3"]) == 0
    assert capsys.readouterr().out == generate(3).describe() + "\n"
    assert main(["--graphs", "5", "--target", "identity"]) == 0
    assert "identity: seeds 0..4: 5 graphs" in capsys.readouterr().out
