"""fast_rebuild: the failing imports really happen, the shortcut removes them, and every
piece of global state (sys.modules, the collector) ends exactly as it was."""
import gc
import sys
import threading

import nnabla as nn
import nnabla.functions as F
import nnabla.variable
import nnabla_ext.cpu
import numpy as np
import pytest

import converters as GC
from converters.fast_rebuild import (ALIASES, IMPOSSIBLE_PARENTS, fast_nnabla_imports,
                                     fast_rebuild, paused_gc)
from converters.rewrite import GraphPass, run_passes


class ImportSpy:
    """A meta-path finder that only records what the import system asks it for."""

    def __init__(self):
        self.names = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)
        return None

    def __enter__(self):
        sys.meta_path.insert(0, self)
        return self

    def __exit__(self, *exc):
        sys.meta_path.remove(self)


OURS = set(ALIASES) | set(IMPOSSIBLE_PARENTS)  # the names the shortcut may add


def _create_and_read():
    x, w = nn.Variable((1, 3, 8, 8)), nn.Variable((4, 3, 3, 3))
    y = F.convolution(x, w)
    w.d  # noqa: B018 (the access is the point)
    return y


def test_without_the_shortcut_nnabla_searches_for_impossible_modules():
    _create_and_read()  # nnabla_ext.cpu imported, everything warm
    with ImportSpy() as spy:
        _create_and_read()
    assert spy.names.count("nnabla.nnabla") >= 1  # function creation
    assert "nnabla.nnabla_ext" in spy.names  # .d


def test_with_the_shortcut_no_finder_is_asked_and_results_are_the_same():
    _create_and_read()
    with fast_nnabla_imports(), ImportSpy() as spy:
        y = _create_and_read()
        assert type(y) is nnabla.variable.Variable
    assert spy.names == []


def test_aliases_are_the_real_modules_and_parents_are_marked_absent():
    with fast_nnabla_imports():
        assert sys.modules["nnabla.nnabla.variable"] is nnabla.variable
        assert sys.modules["nnabla.nnabla_ext.cpu"] is nnabla_ext.cpu
        for parent in IMPOSSIBLE_PARENTS:
            assert sys.modules[parent] is None
            with pytest.raises(ModuleNotFoundError):
                __import__(parent)
    assert set(ALIASES) | set(IMPOSSIBLE_PARENTS) == {
        "nnabla.nnabla", "nnabla.nnabla_ext", "nnabla.nnabla.variable", "nnabla.nnabla_ext.cpu"}


def test_sys_modules_is_restored_exactly_nested_and_on_errors():
    before = dict(sys.modules)
    with pytest.raises(RuntimeError):
        with fast_nnabla_imports():
            with fast_nnabla_imports():
                assert "nnabla.nnabla" in sys.modules
            assert "nnabla.nnabla" in sys.modules  # the outer block still has it
            raise RuntimeError("inside")
    assert dict(sys.modules) == before


def test_entries_someone_else_made_are_left_alone():
    sys.modules["nnabla.nnabla"] = None  # e.g. a user who installed the fix for good
    try:
        with fast_nnabla_imports():
            pass
        assert "nnabla.nnabla" in sys.modules and sys.modules["nnabla.nnabla"] is None
    finally:
        del sys.modules["nnabla.nnabla"]
    # an entry replaced during the block is not ours any more: not removed on exit
    sentinel = object()
    with fast_nnabla_imports():
        sys.modules["nnabla.nnabla_ext"] = sentinel
    try:
        assert sys.modules["nnabla.nnabla_ext"] is sentinel
    finally:
        del sys.modules["nnabla.nnabla_ext"]


def test_threads_share_one_count_and_the_last_exit_restores():
    entered, release = threading.Event(), threading.Event()

    def other():
        with fast_nnabla_imports():
            entered.set()
            release.wait(10)
    t = threading.Thread(target=other)
    with fast_nnabla_imports():
        t.start()
        entered.wait(10)
    assert "nnabla.nnabla" in sys.modules  # the other thread is still converting
    release.set()
    t.join(10)
    assert "nnabla.nnabla" not in sys.modules


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_gc_restores_the_previous_state_also_on_errors(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(KeyError):
            with paused_gc():
                assert not gc.isenabled()
                with paused_gc():
                    pass
                assert not gc.isenabled()  # the inner block does not re-enable
                raise KeyError("inside")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


class _Probe(GraphPass):
    """Copies every function and records what the rebuild saw."""

    def __init__(self, seen, fail=False):
        self.seen, self.fail = seen, fail

    def rewrite(self, f, inputs, b, plan):
        self.seen.append((gc.isenabled(), sys.modules.get("nnabla.nnabla.variable")))
        if self.fail:
            raise ValueError("pass failed")


def test_run_passes_rebuilds_under_both_shortcuts_and_undoes_them(rng):
    x = nn.Variable.from_numpy_array(rng.randn(1, 3, 8, 8).astype(np.float32))
    y = F.relu(F.convolution(x, nn.Variable.from_numpy_array(rng.randn(4, 3, 3, 3))))
    before, seen = dict(sys.modules), []
    result = run_passes([_Probe(seen)], y, params={})
    assert seen == [(False, nnabla.variable)] * 2
    assert gc.isenabled() and dict(sys.modules) == before
    y.forward()
    result.outputs[0].forward()
    np.testing.assert_array_equal(result.outputs[0].d, y.d)
    with pytest.raises(ValueError, match="pass failed"):
        run_passes([_Probe([], fail=True)], y, params={})
    assert gc.isenabled() and not any(name in sys.modules for name in OURS)
    assert GC.run_passes is run_passes


def test_fast_rebuild_combines_both():
    before = dict(sys.modules)
    with fast_rebuild():
        assert not gc.isenabled() and sys.modules["nnabla.nnabla"] is None
    assert gc.isenabled() and dict(sys.modules) == before
