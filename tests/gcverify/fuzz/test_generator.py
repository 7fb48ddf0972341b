"""Random-graph fuzzing of every converter in ``gcverify.fuzz.TARGETS``, and the generator's tests.

The fuzz run is split into batches of ``BATCH`` seeds per target so xdist spreads them over
workers; collection depends only on the options, so every worker collects the same items.
Replay one graph: ``GC_FUZZ_SEED=<seed> GC_FUZZ_GRAPHS=1 GC_FUZZ_TARGETS=<target> pytest
tests/test_fuzz.py -k fuzz_batch``. A longer soak: ``GC_FUZZ_GRAPHS=50000 GC_FUZZ_SEED=$RANDOM``.
"""
import json
from collections import Counter

import numpy as np
import pytest

from converters.graph_view import GraphView
from gcverify.fuzz import (OPS, GenOptions, InvalidRecipe, Recipe, fuzz_target, generate,
                           random_model, run_fuzz, target_names)

BATCH = 100


def _batches(config):
    n, base = config.getoption("gc_fuzz_graphs"), config.getoption("gc_fuzz_seed")
    wanted = [t.strip() for t in config.getoption("gc_fuzz_targets").split(",") if t.strip()]
    for name in wanted:
        fuzz_target(name)  # an unknown name fails collection with the list of known ones
    names = wanted or target_names()
    return [(name, range(base + start, base + min(start + BATCH, n)))
            for name in names for start in range(0, n, BATCH)]


def pytest_generate_tests(metafunc):
    if "fuzz_batch" in metafunc.fixturenames:
        batches = _batches(metafunc.config)
        base = metafunc.config.getoption("gc_fuzz_seed")
        metafunc.parametrize("fuzz_batch", batches, ids=["{}-{}".format(name, (seeds.start - base) // BATCH)
                                                         for name, seeds in batches])


def test_fuzz_batch(fuzz_batch, request):
    name, seeds = fuzz_batch
    target = fuzz_target(name)
    print("gc-fuzz {}: seeds {}..{} (replay one: GC_FUZZ_SEED=<seed> GC_FUZZ_GRAPHS=1 "
          "GC_FUZZ_TARGETS={})".format(name, seeds.start, seeds.stop - 1, name))
    save = request.config.getoption("gc_fuzz_save") or None
    report = run_fuzz(target, seeds, save_dir=save)
    print(report.summary())
    request.node.user_properties.append(("gc_fuzz", json.dumps(
        {"target": name, "first_seed": seeds.start, "graphs": report.graphs, "counts": dict(report.counts),
         "seconds": round(report.seconds, 3)})))
    assert not report.failures, report.details()
    refused = report.counts["refused"] / max(report.graphs, 1)
    assert refused <= target.max_refused, (
        "{} refused {:.0%} of the graphs (allowed {:.0%}): the fuzz would test nothing".format(
            name, refused, target.max_refused))


# --- the generator ---------------------------------------------------------------------
SEEDS = range(300)


@pytest.fixture(scope="module")
def recipes():
    return [generate(s) for s in SEEDS]


def test_same_seed_same_graph_and_numbers():
    for seed in (0, 7, 123):
        a, b = generate(seed), generate(seed)
        assert a.to_dict() == b.to_dict()
        ma, mb = a.build(), b.build()
        for x, y in zip(ma.forward(), mb.forward()):
            np.testing.assert_array_equal(x, y)
        assert list(ma.params) == list(mb.params)
        for k in ma.params:
            np.testing.assert_array_equal(ma.params[k].d, mb.params[k].d)
    assert generate(1).to_dict() != generate(2).to_dict()


def test_every_listed_function_appears(recipes):
    seen = Counter()
    for r in recipes:
        model = r.build()
        seen.update(GraphView(model.outputs, model.params).histogram())
    assert sorted(set(OPS) - set(seen)) == []


def test_argument_variety_appears(recipes):
    found = Counter()
    for r in recipes:
        shapes = r.shapes()
        found["rank{}".format(len(r.inputs[0]))] += 1
        for n in r.nodes:
            a, c_in = n["args"], shapes[n["src"][0]][1] if len(shapes[n["src"][0]]) > 1 else 0
            if n["op"] == "Convolution":
                found["conv-depthwise" if a["group"] == c_in > 1 else "conv-grouped" if a["group"] > 1
                      else "conv"] += 1
                found["strided"] += max(a["stride"]) > 1
                found["dilated"] += max(a["dilation"]) > 1
                found["padded"] += max(a["pad"]) > 0
            if n["op"] == "Deconvolution":
                found["deconv-output-padding"] += max(a["output_padding"]) > 0
                found["deconv-grouped"] += a["group"] > 1
            if n["op"] == "BatchNormalization":
                for key in ("batch_stat", "no_scale", "no_bias"):
                    found["bn-" + key] += a[key]
                found["bn-spatial-axis"] += a["axes"] != [1]
            if n["op"].endswith("Pooling"):
                found["pool-no-ignore-border"] += not a["ignore_border"]
            if n["op"] == "AveragePooling":
                found["avg-including-pad-" + str(a["including_pad"])] += 1
    wanted = ["rank3", "rank4", "rank5", "conv", "conv-depthwise", "conv-grouped", "strided", "dilated",
              "padded", "deconv-output-padding", "deconv-grouped", "bn-batch_stat", "bn-no_scale",
              "bn-no_bias", "bn-spatial-axis", "pool-no-ignore-border", "avg-including-pad-True",
              "avg-including-pad-False"]
    assert [w for w in wanted if not found[w]] == []


def _structure(model):
    view = GraphView(model.outputs, model.params)
    readers = Counter()
    for f in view.functions:
        for v in f.inputs:
            readers[v] += 1
    forked = any(view.uses(f.outputs[0]) > 1 for f in view.functions)
    shared = any(readers[p] > 1 for p in view.parameters)
    return view, forked, shared


def test_graphs_are_valid_and_structures_occur(recipes):
    found = Counter()
    for r in recipes:
        model = r.build()
        view, forked, shared = _structure(model)
        assert set(view.inputs) == set(model.inputs) and len(view.inputs) == len(model.inputs)
        assert set(view.parameters) == set(model.params.values())
        assert all(view.param_name(p) for p in view.parameters)
        assert [tuple(o.shape) for o in model.outputs] == [r.shapes()[v] for v in r.outputs]
        assert all(np.isfinite(o).all() for o in model.forward())
        found.update(forked=forked, shared=shared, inputs=len(model.inputs) > 1,
                     outputs=len(model.outputs) > 1, read_output=any(view.consumers(o) for o in model.outputs))
    for feature in ("forked", "shared", "inputs", "outputs", "read_output"):
        assert found[feature] >= 5, (feature, found)


def test_smaller_size_replays_the_same_first_draws():
    full = generate(11, size=8)
    small = generate(11, size=3)
    assert 1 <= len(small) <= len(full)
    assert small.inputs == full.inputs


def test_recipe_round_trips_through_json_and_prunes():
    r = generate(5)
    again = Recipe.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.to_dict() == r.to_dict()
    k, last = len(r.inputs), len(r.nodes) - 1
    smaller = r.pruned({k + last: r.nodes[last]["src"][0]})
    assert len(smaller) < len(r)
    smaller.shapes()  # still consistent


def test_invalid_recipes_are_rejected_with_a_reason():
    bad = Recipe([(1, 2, 4, 4)], [{"op": "Add2", "src": [0, 1], "args": {}, "share": None}], [1])
    with pytest.raises(InvalidRecipe, match="later value"):
        bad.shapes()
    mismatched = Recipe([(1, 2, 4, 4), (1, 3, 4, 4)],
                        [{"op": "Add2", "src": [0, 1], "args": {}, "share": None}], [2])
    with pytest.raises(InvalidRecipe, match="Add2"):
        mismatched.build()


def test_options_restrict_the_ops_and_reject_unknown_names():
    opts = GenOptions(weights={"Convolution": 1.0, "ReLU": 1.0})
    ops = set().union(*(generate(s, options=opts).histogram() for s in range(40)))
    assert ops == {"Convolution", "ReLU"}
    with pytest.raises(ValueError, match="Convolutoin"):
        GenOptions(weights={"Convolutoin": 1.0})
    assert random_model(3, options=opts).outputs


def test_shrink_edits_that_pass_the_shape_formulas_build():
    from gcverify.fuzz.shrink import recipe_edits
    built = 0
    for seed in range(0, 300, 10):
        for candidate in recipe_edits(generate(seed)):
            try:
                candidate.shapes()
            except InvalidRecipe:
                continue
            try:
                candidate.build()  # NNabla agrees with the formulas, or the recipe names why not
                built += 1
            except InvalidRecipe:
                pass
    assert built > 100
