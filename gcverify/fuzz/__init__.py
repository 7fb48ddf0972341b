"""Random-graph fuzzing of graph converters.

- ``generate(seed) -> Recipe`` / ``random_model(seed) -> Model``: random valid graphs
  (``generator``, ``ops``, ``recipe``);
- ``check(target, model) -> Outcome``: equal within tolerance or a clear refusal, and the
  original graph, its parameters and the global scope unchanged (``harness``);
- ``run_fuzz(target, seeds)``: a campaign of many graphs, failures shrunk (``shrink``) and
  saved as regression tests (``reproducer``);
- ``TARGETS`` / ``fuzz_target(name)``: the converters fuzzed here, the registry's own
  entries (``targets``; ``FuzzTarget.from_spec(spec)`` fuzzes any ConverterSpec).

Fuzzing your own converter::

    from gcverify.fuzz import FuzzTarget, run_fuzz
    target = FuzzTarget("mine", lambda model: MyConverter().convert(model.outputs))
    # or a registered one: FuzzTarget.from_spec(my_spec, tolerance=FUZZ_FLOAT32)
    report = run_fuzz(target, range(500), save_dir="tests/regressions",
                      target_ref="mypkg.fuzz_targets:target")
    assert not report.failures, report.details()
"""
from .generator import DEFAULT_WEIGHTS, GenOptions, generate, random_model
from .harness import FAILURE_KINDS, FUZZ_FLOAT32, Conversion, FuzzTarget, Outcome, check, is_clear_refusal
from .ops import OPS
from .recipe import Assembler, InvalidRecipe, Recipe
from .reproducer import write_regression
from .campaign import FuzzFailure, FuzzReport, run_fuzz
from .shrink import failure_predicate, shrink
from .targets import FORMER_NAMES, TARGETS, UnknownTargetError, from_builtin, fuzz_target, target_names

__all__ = ["DEFAULT_WEIGHTS", "GenOptions", "generate", "random_model", "FAILURE_KINDS", "FUZZ_FLOAT32",
           "Conversion", "FuzzTarget", "Outcome", "check", "is_clear_refusal",
           "OPS", "Assembler", "InvalidRecipe", "Recipe", "write_regression", "FuzzFailure", "FuzzReport",
           "run_fuzz", "failure_predicate", "shrink", "TARGETS", "FORMER_NAMES", "UnknownTargetError",
           "from_builtin", "fuzz_target", "target_names"]
