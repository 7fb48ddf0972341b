"""Two shortcuts for rebuilding NNabla graphs in Python, each scoped and undone exactly.

Failing imports. NNabla's Cython modules are compiled with ``language_level=2``, so inside
the package ``nnabla`` a statement such as ``from nnabla.variable import Variable`` is an
implicit relative import: CPython first tries ``nnabla.nnabla.variable``, which fails only
after every meta-path finder has been asked and the package directory stat-ed, and then
imports ``nnabla.variable`` absolutely. That happens on every function creation
(``nnabla.function``) and every ``.d`` / ``.data`` access (``nnabla._nd_array`` does
``from nnabla_ext.cpu import context``, tried first as ``nnabla.nnabla_ext.cpu``), ~30 us
each. Inside :func:`fast_nnabla_imports`:

- ``sys.modules["nnabla.nnabla"] = None`` and ``sys.modules["nnabla.nnabla_ext"] = None``:
  a ``None`` entry makes the import system raise ``ModuleNotFoundError`` at once (the
  documented meaning of ``None`` in ``sys.modules``), so every relative attempt fails
  fast and falls back to the absolute import, exactly as before, only without the search;
- ``sys.modules["nnabla.nnabla.variable"]`` and ``sys.modules["nnabla.nnabla_ext.cpu"]``
  are the already imported modules ``nnabla.variable`` and ``nnabla_ext.cpu``: the two hot
  relative attempts then find a module at once, and it is the very object the absolute
  import returns (both are ``from ... import name`` statements, which only read attributes
  of the module found).

Why it is safe: ``nnabla.nnabla`` and ``nnabla.nnabla_ext`` can never exist (there is no
such module or package inside nnabla; checked once with ``importlib.util.find_spec``
before the first use, and the shortcut stays off if one ever appears), so no import that
could succeed is refused, and the aliases are the real module objects, so nothing that
succeeds gets anything else. Entries are only *added* where absent and removed on exit
only while they still hold what was added, so ``sys.modules`` ends exactly as it was. It
is scoped, not installed once per process, so that code outside a conversion (tools that
walk ``sys.modules``, pickling by module name) never sees the extra names; a depth count
under a lock makes it nestable and safe across threads (the outermost exit restores).

Cyclic GC. Rebuilding N functions allocates O(N) container objects that all survive;
each gen-2 collection scans every one of them (and the NNabla wrappers), so the collector's
work grows faster than N past ~1000 layers. :func:`paused_gc` disables the collector for the
block and re-enables it only if it was enabled (also when the block raises). A rebuild
makes no reference cycles of its own, so nothing accumulates meanwhile; a collection
runs as usual after the block.
"""
import gc
import importlib.util
import sys
import threading
from contextlib import contextmanager

__all__ = ["fast_nnabla_imports", "paused_gc", "fast_rebuild", "IMPOSSIBLE_PARENTS",
           "ALIASES"]

IMPOSSIBLE_PARENTS = ("nnabla.nnabla", "nnabla.nnabla_ext")
ALIASES = {  # name tried by the relative import -> the module the absolute one finds
    "nnabla.nnabla.variable": "nnabla.variable",
    "nnabla.nnabla_ext.cpu": "nnabla_ext.cpu",
}

_lock = threading.Lock()
_depth = 0
_added = {}  # what the outermost entry put into sys.modules: name -> value
_checked_parents = None  # IMPOSSIBLE_PARENTS that find_spec confirmed absent


def _impossible_parents():
    global _checked_parents
    if _checked_parents is None:
        _checked_parents = tuple(p for p in IMPOSSIBLE_PARENTS if p not in sys.modules
                                 and importlib.util.find_spec(p) is None)
    return _checked_parents


def _install():
    for parent in _impossible_parents():
        entries = [(parent, None)] + [(leaf, sys.modules.get(real))
                                      for leaf, real in ALIASES.items()
                                      if leaf.startswith(parent + ".")]
        for name, value in entries:
            if name not in sys.modules and (value is not None or name == parent):
                sys.modules[name] = value
                _added[name] = value


def _restore():
    for name, value in _added.items():
        if name in sys.modules and sys.modules[name] is value:
            del sys.modules[name]
    _added.clear()


class fast_nnabla_imports:
    """NNabla's failing implicit-relative imports short-circuited for the block (nestable).

    A class rather than a generator so that entering costs ~1 us per conversion."""

    __slots__ = ()

    def __enter__(self):
        global _depth
        with _lock:
            if _depth == 0:
                _install()
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()
        return False


@contextmanager
def paused_gc():
    """The cyclic garbage collector off for the block, then exactly as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def fast_rebuild():
    """Both shortcuts, for rebuilding (or cloning, snapshotting) a graph."""
    with paused_gc(), fast_nnabla_imports():
        yield
