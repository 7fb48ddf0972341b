"""Planted bugs: small, realistic mutations of our converters, to measure the verifier.

A verifier is only as good as the bugs it catches. Each :class:`PlantedBug` is one mistake a
developer could make in ``converters/`` (an epsilon forgotten, an axis or a permutation
wrong, a guard dropped, a step doubled...), the matrix rows that run that code (``targets``:
rows of ``gcverify/builtin/ours.py`` and ``compat.py``), and ``apply()``, a context manager
that monkeypatches the converters' code where the converters look it up (a module attribute,
a pass's method, an entry of a dispatch table) and restores every patched attribute exactly
(the very same objects, dict contents and order included). Nothing here touches gcverify:
the verifier's own references must stay independent of the code under test.

``survives`` says why a bug is not caught by the current default matrix: which situation no
zoo model or row exercises (or which verifier defect lets it through). tests/gcverify/mutations/
requires every other bug to be caught by a failed check (a verdict) and treats survivors as
strict expected failures, so the day a new model or row catches one, its marker has to go.

Use: ``GCVERIFY_PLANT=bn_fold_no_eps pytest suites --gc-converters=bn_fold`` (the root
conftest plants them for the session); :func:`plant` does the same in code. This file holds
the machinery and the bugs of BN folding; ``planted_bugs_layout.py`` those of layout
conversion, ``planted_bugs_quant.py`` those of the quantizers, low rank and the
NNabla-compatible modifiers. docs/planted_bugs.md says which check catches each one, on
which model. Import as ``suites.planted_bugs``, with the project root on ``sys.path``
(``PYTHONPATH=.``; the root conftest and tests/gcverify/mutations/conftest.py put it there).
"""
import contextlib
from dataclasses import dataclass
from typing import Callable, Tuple

__all__ = ["PlantedBug", "CATALOGUE", "UnknownPlantedBug", "planted", "plant", "names", "lookup",
           "BN_ROWS", "FOLD_ROWS", "LAYOUT_ROWS"]

CATALOGUE = {}  # name -> PlantedBug, in definition order
_MISSING = object()  # "the attribute did not exist": restoring deletes it


class UnknownPlantedBug(KeyError):
    """A name that is not in the catalogue; the message lists the known ones."""

    def __str__(self):
        return self.args[0]


@dataclass(frozen=True)
class PlantedBug:
    """One mutation. ``make()`` returns ``[(owner, key, replacement)]``: owner is a module, a
    class or a dict; it is called when the bug is applied, so a replacement may wrap the
    current original."""

    name: str
    kind: str
    targets: Tuple[str, ...]
    description: str
    make: Callable
    survives: str = ""

    @contextlib.contextmanager
    def apply(self):
        patches = list(self.make())  # all computed before anything is patched
        saved = []
        try:
            for owner, key, new in patches:
                saved.append(_save(owner, key))
                _put(owner, key, new)
            yield self
        finally:
            for owner, key, old in reversed(saved):
                _restore(owner, key, old)


def _save(owner, key):
    if isinstance(owner, dict):
        return owner, key, list(owner.items())  # the whole table: order restored too
    return owner, key, vars(owner).get(key, _MISSING)  # raw: a staticmethod stays one


def _put(owner, key, new):
    if isinstance(owner, dict):
        owner[key] = new
    else:
        setattr(owner, key, new)


def _restore(owner, key, old):
    if isinstance(owner, dict):
        owner.clear()
        owner.update(old)
    elif old is _MISSING:
        if key in vars(owner):
            delattr(owner, key)
    else:
        setattr(owner, key, old)


def planted(name, kind, targets, description, survives=""):
    """Decorator registering ``make`` as the bug ``name`` (see :class:`PlantedBug`)."""
    def register(make):
        if name in CATALOGUE:
            raise ValueError("planted bug {!r} defined twice".format(name))
        CATALOGUE[name] = PlantedBug(name, kind, tuple(targets), description, make, survives)
        return make
    return register


def names():
    return list(CATALOGUE)


def lookup(name):
    """The bug called ``name``; UnknownPlantedBug listing the known names otherwise."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownPlantedBug("unknown planted bug {!r}; known: {}".format(
            name, ", ".join(CATALOGUE))) from None


def plant(requested):
    """Apply the bugs named in ``requested`` (a comma list or a list of names) until the
    returned ExitStack is closed; every name is checked before anything is patched."""
    if isinstance(requested, str):
        requested = requested.split(",")
    bugs = [lookup(n.strip()) for n in requested if n.strip()]
    stack = contextlib.ExitStack()
    try:
        for bug in bugs:
            stack.enter_context(bug.apply())
    except BaseException:
        stack.close()
        raise
    return stack


# --- the rows that run each family's code ----------------------------------------------
FOLD_ROWS = ("bn_fold", "bn_fold_channel_last")
BN_ROWS = FOLD_ROWS + ("bn_linear", "bn_fold_opposite")  # every user of bn_fold's BN reading
LAYOUT_ROWS = ("channel_last", "bn_fold_channel_last", "channel_roundtrip", "channel_roundtrip_unrestored")


def _wrap(owner, name, mutate):
    """``[(owner, name, mutate(original))]``: the usual one-patch bug."""
    return [(owner, name, mutate(vars(owner)[name]))]


def _static(owner, name, mutate):
    """The same for a staticmethod: wrapped, and put back as a staticmethod."""
    return [(owner, name, staticmethod(mutate(vars(owner)[name].__func__)))]


# --- BN folding and linearization ---------------------------------------------------------
@planted("bn_fold_no_eps", "dropped epsilon", BN_ROWS, "c0 = gamma / sqrt(var): the BN's eps forgotten")
def _no_eps():
    from converters import bn_fold
    return _wrap(bn_fold, "bn_scale_shift", lambda orig: lambda mean, var, eps, gamma=None, beta=None:
                 orig(mean, var, 0.0, gamma, beta))


@planted("bn_fold_bias_factor", "slightly wrong bias term", FOLD_ROWS + ("prune",),
         "b' = c0 * b * (1 + 1e-5) + c1: the layer's own bias scaled a hair too much (bn_math._bias, "
         "shared with pruning)")
def _bias_factor():
    import numpy as np
    from converters import bn_math
    return _wrap(bn_math, "_bias", lambda orig: lambda b, c0, c1, shape: orig(
        None if b is None else np.asarray(b, np.float32) * np.float32(1 + 1e-5), c0, c1, shape))


@planted("bn_fold_affine_rows", "wrong axis", FOLD_ROWS + ("prune",),
         "Affine -> BN scales the weight's rows (inputs) instead of its columns (NNabla's own bug)")
def _affine_rows():
    import numpy as np
    from converters import bn_math

    def rows(w, b, c0, c1, args, out):
        scale = c0.reshape((-1,) + (1,) * (w.ndim - 1))
        return np.multiply(w, scale, out=out), bn_math._bias(b, c0, c1, w.shape[w.ndim - c0.ndim:])
    return [(bn_math.PRODUCER_KINDS, "Affine", rows)]


@planted("bn_fold_deconv_group_order", "wrong axis", FOLD_ROWS + ("prune",),
         "grouped Deconvolution: output channel o read as j * group + g instead of g * (out/g) + j")
def _deconv_group_order():
    from converters import bn_math
    orig = bn_math.PRODUCER_KINDS["Deconvolution"]

    def interleaved(w, b, c0, c1, args, out):
        g = args.get("group", 1)
        return orig(w, b, c0.reshape(-1, g).T.reshape(-1), c1, args, out)
    return [(bn_math.PRODUCER_KINDS, "Deconvolution", interleaved)]


@planted("bn_fold_misses_depthwise", "missed layer", FOLD_ROWS,
         "DepthwiseConvolution missing from the layers BN folds into (kept as 'no weights')")
def _misses_depthwise():
    from converters import bn_fold
    kinds = {k: v for k, v in bn_fold.PRODUCER_KINDS.items() if k != "DepthwiseConvolution"}
    return [(bn_fold, "PRODUCER_KINDS", kinds)]


@planted("bn_linear_misses_nd", "missed layer", ("bn_linear",),
         "BN linearization written for images: a BN on 3D or 5D data silently left in place")
def _linear_misses_nd():
    from converters.bn_fold import LinearizeBatchNorm

    def mutate(orig):
        def rewrite(self, f, inputs, b, plan):
            if f.info.type_name == "BatchNormalization" and f.inputs[0].ndim != 4:
                return None
            return orig(self, f, inputs, b, plan)
        return rewrite
    return _wrap(LinearizeBatchNorm, "rewrite", mutate)


@planted("bn_fold_shared_weight", "broken shared-weight handling", FOLD_ROWS,
         "a weight shared by two convolutions is folded once: the second reuses the first BN's fold")
def _shared_weight():
    from converters.bn_fold import FoldBatchNorm
    from converters.graph_view import parameter_source

    def mutate(orig):
        def _fold(self, layer, inputs, b, bn_f, bn):
            done = b.__dict__.setdefault("planted_folded", {})
            key = parameter_source(layer.inputs[1])
            if key in done:
                return b.call(layer.info.type_name, [inputs[0]] + done[key], layer.info.args)[0]
            out = orig(self, layer, inputs, b, bn_f, bn)
            done[key] = list(out.parent.inputs[1:])
            return out
        return _fold
    return _wrap(FoldBatchNorm, "_fold", mutate)


@planted("bn_fold_mutates_original", "mutated original", FOLD_ROWS,
         "the folded weight is also written back into the layer's own weight (an 'in-place' fold)")
def _mutates_original():
    import numpy as np
    from converters import bn_fold

    def mutate(orig):
        def fold_into_producer(kind, w, b, c0, c1, args=None, out=None):
            folded, bias = orig(kind, w, b, c0, c1, args, out)
            np.copyto(w, folded)
            return folded, bias
        return fold_into_producer
    return _wrap(bn_fold, "fold_into_producer", mutate)


@planted("bn_fold_frozen", "frozen parameter", FOLD_ROWS,
         "folded weights and biases created with need_grad=False: fine-tuning them does nothing")
def _frozen():
    from converters.bn_fold import FoldBatchNorm

    def mutate(orig):
        def _fold(self, layer, inputs, b, bn_f, bn):
            out = orig(self, layer, inputs, b, bn_f, bn)
            for v in out.parent.inputs[1:]:
                v.need_grad = False
            return out
        return _fold
    return _wrap(FoldBatchNorm, "_fold", mutate)


@planted("bn_fold_forked_guard", "guard removed", FOLD_ROWS,
         "folds into a layer whose output is also read elsewhere (the fork guard dropped)")
def _forked_guard():
    from converters import bn_fold

    def mutate(orig):
        def _preceding(view, f, bn):
            layer = view.producer(bn.x)
            if layer is None or layer.info.type_name not in bn_fold.PRODUCER_KINDS:
                return orig(view, f, bn)
            return layer, bn_fold._weights_reason(layer, view) or bn_fold._axes_reason(layer, bn, view)
        return _preceding
    return _static(bn_fold.FoldBatchNorm, "_preceding", mutate)


@planted("bn_fold_opposite_padded", "guard removed", ("bn_fold_opposite",),
         "opposite fold into a zero-padded convolution (the border guard dropped)")
def _opposite_padded():
    from converters import bn_fold

    def mutate(orig):
        def _following(view, f, bn):
            layer, reason = orig(view, f, bn)
            if reason is not None and "zero-pads its input" in reason:
                return layer, None
            return layer, reason
        return _following
    return _static(bn_fold.FoldBatchNorm, "_following", mutate)


@planted("bn_fold_batch_stat", "guard removed", BN_ROWS,
         "a BN in training mode (batch_stat=True) folded with its running statistics")
def _batch_stat():
    from converters import bn_fold
    return _wrap(bn_fold, "_bn_reason", lambda orig: lambda view, bn: orig(view, bn._replace(batch_stat=False)))


@planted("bn_no_bias_flag_swapped", "wrong argument", BN_ROWS,
         "read_batch_norm pops beta when no_scale is set and gamma when no_bias is")
def _flags_swapped():
    from converters import bn_fold

    def read_batch_norm(f):
        args, inputs = f.info.args, list(f.inputs)
        x = inputs.pop(0)
        beta = None if args.get("no_scale", False) else inputs.pop(0)
        gamma = None if args.get("no_bias", False) else inputs.pop(0)
        mean, var = inputs
        return bn_fold.BatchNormInfo(x, sorted(a % x.ndim for a in args["axes"]), args["eps"],
                                     args["batch_stat"], beta, gamma, mean, var)
    return [(bn_fold, "read_batch_norm", read_batch_norm)]


import suites.planted_bugs_layout  # noqa: E402,F401  (registers the rest of the catalogue)
import suites.planted_bugs_quant  # noqa: E402,F401
