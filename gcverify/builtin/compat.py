"""Matrix rows of the NNabla 1.39 modifiers ``converters`` took over (issue #13), ours through
``import converters as GC`` (the Modifier API); NNabla's own stand beside them in :mod:`.peers`.

What each row asserts is the thing its modifier is for, judged by code that is not the
modifier's:

- ``fused_bn``: every BN -> Add2 -> ReLU chain becomes one FusedBatchNormalization
  (:class:`~gcverify.core.wiring_rules.Fuses`), the numbers unchanged;
- ``unfused_bn``: the model fused (by ``fused_bn``'s modifier, checked by the same rule), then
  unfused: the original histogram back, no FusedBatchNormalization left, exactly the numbers;
- ``batch_stat_off`` / ``test_mode``: the model's training twin (every BN on batch statistics;
  for ``test_mode`` also a Dropout before every Affine, :func:`~gcverify.verify.references.training_twin`)
  converted back must compute exactly what the model computes: with random statistics a BN
  left on batch statistics, or a Dropout left in, changes every number;
- ``identity_modifier``: the graph read through new input variables, same parameters;
- ``no_grad``: no parameter needs a gradient, same numbers;
- ``add_bias``: every bias-less Convolution/Deconvolution/Affine next to a BN gets a bias;
- ``prune`` and ``remove_function`` change the numbers by design: each is compared exactly with
  an independent reference (:mod:`gcverify.verify.references`);
- ``qat_recording``: one recorder per tensor read by an inner-product layer, numbers equal;
- ``qat_qdq``: after one calibration forward, each recorder a quantize/dequantize pair, each
  bias on its accumulator grid, compared exactly with the verifier's own fake-quantized model
  (:class:`~gcverify.verify.references.QuantizedInputs`).

On a model without what a modifier converts (no BN -> Add2 -> ReLU chain in LeNet), its row
is a negative case: nothing may change.
"""
import nnabla as nn

from converters.graph_view import GraphView

from ..core.conversion import Conversion
from ..core.expectations import TOLERANCES, Functions, Removes, Unchanged, INNER_PRODUCT
from ..core.wiring_rules import Fuses, HasBias, NoGradients, QuantizesInputs, Records, SharesParameters, \
    RECORDERS
from ..core.registry import ConverterSpec
from ..verify.execution import feed
from ..verify.references import PrunedChannels, QuantizedInputs, WithoutFunctions, training_twin

__all__ = ["COMPAT", "FUSES", "PRUNING_THRESHOLD", "REMOVED_TYPES", "TRAINING_ONLY", "QDQ_TYPES",
           "qat_config", "qat_ranks", "calibrate", "fused_model", "twin_for", "new_inputs"]

FUSES = Fuses()
# He-initialised weights have a squared norm of about 2 per output channel: about half go
PRUNING_THRESHOLD = 2.0
REMOVED_TYPES = ("BatchNormalization",)  # shape-preserving, in every zoo model
TRAINING_ONLY = ("Dropout",)             # what test_mode removes from the training twin
NO_TRAINING_BN = Removes(Functions.of("BatchNormalization", batch_stat=True))
QDQ_TYPES = ("QuantizeLinear", "DequantizeLinear", "Div2", "Round", "Mul2")  # what QAT's QDQ graph adds


def _gc():
    import converters as GC  # imported lazily so the plugin loads even if a family is broken
    return GC


def _conversion(gc, outputs, model, inputs=None, var_map=True, steps=()):
    """A Conversion of our GraphConverter ``gc``'s last run on ``model``. ``steps``: Rewrites
    of earlier conversions this one continued from (their new parameters count too, and the
    variable maps compose); ``var_map=False`` where the run started from a graph derived from
    the model (a training twin), whose variables the original does not have."""
    params, mapping = dict(model.params), None
    for rewrite in tuple(steps) + (gc.last_result,):
        params.update(rewrite.new_parameters)
        step = dict(rewrite.var_map)
        mapping = step if mapping is None else {k: step.get(v, v) for k, v in mapping.items()}
    return Conversion(list(outputs), list(model.inputs if inputs is None else inputs),
                      mapping if var_map else {}, params, list(gc.last_result.events))


def _run(modifiers, outputs, params):
    gc = _gc().GraphConverter(modifiers, params=params)
    return gc, gc.convert(list(outputs))


def fused_bn(model):
    """FusedBatchNormalizationModifier: each BN -> Add2 -> ReLU becomes one FusedBatchNormalization."""
    gc, outputs = _run([_gc().FusedBatchNormalizationModifier()], model.outputs, model.params)
    return _conversion(gc, outputs, model)


def fused_model(model):
    """``(our fuser's GraphConverter, outputs)`` on ``model``; a RuntimeError when the fused graph
    is not what :data:`FUSES` expects (an unfuser given it would be judged on the wrong input)."""
    from converters.graph_view import GraphView
    gc, outputs = _run([_gc().FusedBatchNormalizationModifier()], model.outputs, model.params)
    ok, text = FUSES.check(GraphView(model.outputs, model.params).functions, GraphView(outputs, {}).functions)
    if not ok:
        raise RuntimeError("the fused model to unfuse is wrong: " + text)
    return gc, outputs


def unfused_bn(model):
    """UnfusedBatchNormalizationModifier on the model fused by ours: the round trip is exact."""
    fuse, fused = fused_model(model)
    params = dict(model.params, **fuse.last_result.new_parameters)
    gc, outputs = _run([_gc().UnfusedBatchNormalizationModifier()], fused, params)
    return _conversion(gc, outputs, model, steps=[fuse.last_result])


def twin_for(model, dropout):
    """The training twin a row converts back; ``dropout``: with Dropouts before Affines."""
    return training_twin(model, dropout_before=("Affine",) if dropout else ())


def batch_stat_off(model):
    """BatchNormBatchStatModifier on the model's training twin: the model itself again, exactly."""
    twin = twin_for(model, dropout=False)
    gc, outputs = _run([_gc().BatchNormBatchStatModifier()], twin.outputs, twin.params)
    return _conversion(gc, outputs, model, var_map=False)


def test_mode(model):
    """TestModeModifier(rm_funcs=['Dropout']) on the model's training twin (batch statistics, a
    Dropout before every Affine): the model itself again, exactly."""
    twin = twin_for(model, dropout=True)
    gc, outputs = _run([_gc().TestModeModifier(rm_funcs=list(TRAINING_ONLY))], twin.outputs, twin.params)
    return _conversion(gc, outputs, model, var_map=False)


test_mode.__test__ = False  # a matrix row, not a pytest test, whatever its name says


def new_inputs(model):
    """Fresh variables shaped like the model's inputs (what IdentityModifier reads instead)."""
    return [nn.Variable(x.shape, need_grad=x.need_grad) for x in model.inputs]


def identity_modifier(model):
    """IdentityModifier({x: x2}): the same graph reading new input variables, same parameters."""
    replacements = new_inputs(model)
    modifier = _gc().IdentityModifier(dict(zip(model.inputs, replacements)))
    gc, outputs = _run([modifier], model.outputs, model.params)
    return _conversion(gc, outputs, model, inputs=replacements)


def no_grad(model):
    """NoGradModifier: every parameter read without gradient, the same numbers."""
    gc, outputs = _run([_gc().NoGradModifier()], model.outputs, model.params)
    return _conversion(gc, outputs, model)


def add_bias(model):
    """AddBiasModifier: a zero bias for every bias-less Convolution/Deconvolution/Affine next to a BN."""
    gc, outputs = _run([_gc().AddBiasModifier()], model.outputs, model.params)
    return _conversion(gc, outputs, model)


def prune(model):
    """PruningModifier(2.0): output channels with sum(W^2) <= 2 zeroed, exactly as the verifier's
    own channel masks say (the reference)."""
    gc, outputs = _run([_gc().PruningModifier(PRUNING_THRESHOLD)], model.outputs, model.params)
    return _conversion(gc, outputs, model)


def remove_function(model):
    """RemoveFunctionModifier(['BatchNormalization']): exactly the model computed without them
    (the reference)."""
    gc, outputs = _run([_gc().RemoveFunctionModifier(list(REMOVED_TYPES))], model.outputs, model.params)
    return _conversion(gc, outputs, model)


def qat_config():
    """The QAT configuration of the qat rows: recorders before the inputs of every
    inner-product layer (no layer skipped), min/max recorders (a range is exact after one
    forward), scales not rounded to powers of two."""
    from nnabla.utils import qnn
    cfg = qnn.QATConfig()
    cfg.record_layers = list(INNER_PRODUCT)
    cfg.skip_inputs_layers, cfg.skip_outputs_layers = [], []
    cfg.recorder_activation = qnn.MinMaxMinMaxRecorderCallback
    cfg.recorder_weight = qnn.MinMaxMinMaxRecorderCallback
    cfg.pow2 = qnn.QATConfig.RoundingMethod.NOTROUND
    return cfg


def qat_ranks(outputs):
    """NNabla's function ranks of a graph (``FunctionsRankRecorder``), as its QAT flow takes them."""
    from nnabla.utils import qnn
    recorder = qnn.FunctionsRankRecorder()
    for o in outputs:
        o.visit(recorder)
    return recorder.functions_ranks


def qat_recording(model):
    """QuantizeNonQNNToRecordingModifier: an identity recorder for each tensor an inner-product
    layer reads, state owned by the result."""
    modifier = _gc().QuantizeNonQNNToRecordingModifier(qat_ranks(model.outputs), qat_config())
    gc, outputs = _run([modifier], model.outputs, model.params)
    return _conversion(gc, outputs, model)


def calibrate(model, outputs):
    """One training forward of a recording graph on the model's data: its recorders' ranges.
    A BN on batch statistics updates the running statistics it shares with the model while it
    runs: those are put back, so calibrating changes nothing of the model."""
    training = [f for f in GraphView(outputs).functions
                if f.info.type_name == "BatchNormalization" and f.info.args.get("batch_stat")]
    values = [(v, v.d.copy()) for f in training for v in f.inputs[-2:] if v.parent is None]
    try:
        feed(model.inputs, model.input_data)
        nn.forward_all(list(outputs))
    finally:
        for v, d in values:
            v.d = d


def qat_qdq(model):
    """QAT's flow: the recording graph, one calibration forward on the model's data, then
    QuantizeRecordingToTrainingModifier on it: quantize/dequantize pairs at the recorded ranges."""
    GC, cfg = _gc(), qat_config()
    record, recorded = _run([GC.QuantizeNonQNNToRecordingModifier(qat_ranks(model.outputs), cfg)],
                            model.outputs, model.params)
    calibrate(model, recorded)
    gc, outputs = _run([GC.QuantizeRecordingToTrainingModifier(None, cfg)], recorded,
                       dict(model.params, **record.last_result.new_parameters))
    return _conversion(gc, outputs, model, steps=[record.last_result])


_spec = ConverterSpec.from_function
_EXACT = TOLERANCES["exact"]
# ResNet-50 shows these rows nothing the small models do not (every layer kind and situation
# they convert is there too) at about a second per case, four for the QDQ forwards: they run on
# it when --gc-models names it. The fused rows keep it: its residual blocks are what they are for.
SMALL_MODELS_BY_DEFAULT = dict(skips_by_default=("resnet50",))
# The training twin of a model with a BN on batch statistics of its own (bn_training) is no
# twin: turning every BN off changes that one, so "exactly the model's numbers" cannot hold.
NOT_ON_TRAINING_MODELS = dict(skips_by_default=("resnet50", "bn_training"))
# Right conversions that the Unchanged rule counts as changes: removing a BN also removes what
# only it read (bn_training's gamma, computed by an Exp), and pruning a weight read through a
# Reshape (bn_corners' flat weight) makes it a new parameter, so the Reshape goes.
NOT_WHERE_BN_GAMMA_IS_COMPUTED = dict(skips_by_default=("resnet50", "bn_training"))
NOT_WHERE_A_WEIGHT_IS_RESHAPED = dict(skips_by_default=("resnet50", "bn_corners"))

COMPAT = (
    # exact on CPU (0.0 measured); float32 for cudnn, where FusedBatchNormalization is a kernel
    # of its own (not measured here: no GPU) and a spec's tolerance cannot depend on the device
    _spec(fused_bn, layers=(FUSES,)),
    _spec(unfused_bn, tolerance=_EXACT, layers=(Unchanged(), Removes(Functions("FusedBatchNormalization")))),
    _spec(batch_stat_off, tolerance=_EXACT, layers=(NO_TRAINING_BN, Unchanged()), **NOT_ON_TRAINING_MODELS),
    _spec(test_mode, tolerance=_EXACT, layers=(NO_TRAINING_BN, Removes(Functions("Dropout")), Unchanged()),
          **NOT_ON_TRAINING_MODELS),
    _spec(identity_modifier, tolerance=_EXACT, layers=(Unchanged(), SharesParameters()),
          **SMALL_MODELS_BY_DEFAULT),
    _spec(no_grad, tolerance=_EXACT, layers=(Unchanged(), NoGradients()), **SMALL_MODELS_BY_DEFAULT),
    _spec(add_bias, tolerance=_EXACT, layers=(Unchanged(), HasBias()), **SMALL_MODELS_BY_DEFAULT),
    _spec(prune, tolerance=_EXACT, layers=(Unchanged(),), reference=PrunedChannels(PRUNING_THRESHOLD),
          **NOT_WHERE_A_WEIGHT_IS_RESHAPED),
    _spec(remove_function, tolerance=_EXACT, reference=WithoutFunctions(REMOVED_TYPES),
          layers=tuple(Removes(Functions(t)) for t in REMOVED_TYPES) + (Unchanged(REMOVED_TYPES),),
          **NOT_WHERE_BN_GAMMA_IS_COMPUTED),
    _spec(qat_recording, tolerance=_EXACT, layers=(Records(), Unchanged(RECORDERS)),
          **SMALL_MODELS_BY_DEFAULT),
    _spec(qat_qdq, tolerance=_EXACT, layers=(QuantizesInputs(), Unchanged(QDQ_TYPES)),
          reference=QuantizedInputs(), **SMALL_MODELS_BY_DEFAULT),
)
