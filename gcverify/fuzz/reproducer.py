"""Write a shrunk failure as a regular pytest file that replays it deterministically.

The file holds the recipe itself (every argument, both seeds), not just the generator seed,
so it keeps reproducing the same graph after the generator changes. It passes once the
converter is fixed, and then stays as a regression test.
"""
import os
import pprint
import re

__all__ = ["write_regression", "regression_source", "regression_name"]

_TEMPLATE = '''"""Fuzz reproducer for {target!r}, written by gcverify.fuzz (replay: pytest {filename}).

Found by generate(seed={seed}) ({size} node draws); shrunk from {before} to {after} nodes.
Failure of the graph below: {kind}: {message}

{graph}
"""
from gcverify.fuzz import Recipe, check, fuzz_target

RECIPE = {recipe}


def {test_name}():
    outcome = check(fuzz_target({target!r}), Recipe.from_dict(RECIPE).build())
    assert outcome.ok, outcome.summary() + "\\n" + Recipe.from_dict(RECIPE).describe()
'''


def regression_name(target_ref, recipe):
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", target_ref.rsplit(":", 1)[-1]).strip("_").lower()
    return "test_fuzz_{}_{}".format(slug, recipe.origin.get("seed", "recipe"))


def regression_source(target_ref, recipe, outcome, original_size=None):
    name = regression_name(target_ref, recipe)
    graph = "\n".join("    " + line for line in recipe.describe().splitlines())
    message = outcome.message.replace('"""', "'''").replace("\\", "/")
    return _TEMPLATE.format(target=target_ref, filename=name + ".py", seed=recipe.origin.get("seed", "?"),
                            size=recipe.origin.get("size", "?"),
                            before=original_size if original_size is not None else len(recipe),
                            after=len(recipe), kind=outcome.kind, message=message[:400],
                            graph="Graph:\n" + graph, recipe=pprint.pformat(recipe.to_dict(), width=96),
                            test_name=name)


def write_regression(directory, target_ref, recipe, outcome, original_size=None):
    """Write ``test_fuzz_<target>_<seed>.py`` into ``directory``; returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, regression_name(target_ref, recipe) + ".py")
    tmp = path + ".tmp{}".format(os.getpid())
    with open(tmp, "w") as f:
        f.write(regression_source(target_ref, recipe, outcome, original_size))
    os.replace(tmp, path)  # atomic: xdist workers never see half a file
    return path
