"""Mixed precision: int8 everywhere except the layers whose int8 breaks the accuracy budget.

Which layers stay in float comes from the sensitivity analysis
(:func:`edgekit.analyze.decide.choose_int8_protection`, verified in simulated int8);
the converted file is then verified on validation data and, while it breaks the
budget, the next guiltiest layer is protected and the file remade.

- TFLite: the converter's quantization debugger (``tf.lite.experimental.QuantizationDebugger``)
  with ``denylisted_nodes``: the named ops run in float32 between DEQUANTIZE/QUANTIZE; when that
  cannot hold the budget, the converter's 16x8 mode (int16 activations, int8 weights) is tried last.
- ONNX: edgekit's ``ort_quantize_static`` (fast settings) with ``nodes_to_exclude``: the named nodes get no Q/DQ;
  or, with ``OrtQuantConfig.protect_with = "int16"``, 16-bit activations and int8 weights (``int16x8``).

Every result records, per layer, which precision it got and why.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.analyze.decide import DEFAULT_BUDGET_PP, next_int8_protection
from edgekit.errors import ExportError

log = logging.getLogger(__name__)

WEIGHT_OPS_TFLITE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL")
WEIGHT_OPS_ONNX = ("Conv", "MatMul", "Gemm", "ConvTranspose")


def names_layer(node_name: str, layer: str) -> bool:
    """Whether a converter node/tensor name belongs to Keras layer ``layer``.

    Both converters name nodes by the TensorFlow scope, ``model/layer/Op`` (TFLite joins fused ops'
    names with ';'; tf2onnx names constants ``model/layer/Op/ReadVariableOp:0``), e.g. ``outer/conv1/Conv2D1``
    or ``outer/backbone/relu1/Relu;outer/backbone/conv1/Conv2D``. The match is anchored at the model's
    top-level scope: the first segment (after any ``StatefulPartitionedCall`` wrappers) is the model's
    name, and the layer is the segment after it; a layer of a nested model (``backbone/conv1``,
    :func:`edgekit.analyze.fakequant.quantizable`) is the consecutive segments there. So a top-level
    ``conv1`` does not name ``outer/backbone/conv1/Conv2D``, which is ``backbone/conv1``."""
    want = layer.split("/")
    for part in node_name.split(";"):
        segments = part.split("/")[:-1]  # the scope; the last segment is the op
        while segments and segments[0].startswith(("StatefulPartitionedCall", "PartitionedCall")):
            segments = segments[1:]
        if segments[1:1 + len(want)] == want:
            return True
    return False


@dataclass
class MixedResult:
    """A mixed-precision model file and how each layer was quantized."""

    format: str
    data: bytes | None  # None when the stage was dropped
    layers: list[dict[str, str]] = field(default_factory=list)  # {"name", "precision", "reason"}
    action: str = "applied"  # applied | backed_off | fallback_16x8 (TFLite) | dropped
    budget_pp: float = DEFAULT_BUDGET_PP
    reference_val_accuracy: float = 0.0
    val_accuracy: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""

    @property
    def precision(self) -> str:
        """'int8' when every layer is int8, 'mixed' when some stay in float."""
        return "mixed" if any(r["precision"] != "int8" for r in self.layers) else "int8"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "data"}
        out["precision"] = self.precision
        out["drop_pp"] = round((self.reference_val_accuracy - self.val_accuracy) * 100.0, 3)
        return out


# --------------------------------------------------------------------------- TFLite


def _tflite_converter(model: Any, representative: np.ndarray,
                      per_channel: bool = True) -> tuple[Any, Callable[[], Any]]:
    from edgekit._tf import tf

    t = tf()
    rep = representative.astype(np.float32)

    def gen() -> Any:
        for i in range(len(rep)):
            yield [rep[i: i + 1]]

    conv = t.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv._experimental_disable_per_channel = not per_channel
    return conv, gen


def tflite_layer_precisions(data: bytes, layers: Sequence[str]) -> dict[str, str]:
    """Precision of each Keras layer's weight op in a TFLite file: its input tensor type (int8, float32 …)."""
    from edgekit.export.tflite_reader import parse_tflite

    graph = parse_tflite(data).subgraphs[0]
    out: dict[str, str] = {}
    for op in graph.operators:
        if op.op not in WEIGHT_OPS_TFLITE or not op.outputs:
            continue
        name = graph.tensors[op.outputs[0]].name
        for layer in layers:
            if layer not in out and names_layer(name, layer):
                out[layer] = graph.tensors[op.inputs[0]].dtype
    return out


def tflite_head_nodes(graph: Any) -> list[str]:
    """Output tensor names of the classifier head of a (float or calibrated) TFLite subgraph: the ops from each
    model output back to, and including, the first weight op (``FULLY_CONNECTED`` → ``SOFTMAX``, say). Empty when
    the path back joins two computed tensors (an ``ADD``) before it reaches a weight op: no single head to keep."""
    producers = {t: op for op in graph.operators for t in op.outputs}
    computed_tensors = set(producers) | set(graph.inputs)
    names: list[str] = []
    for out in graph.outputs:
        op = producers.get(out)
        while op is not None and len(names) < 16:
            names.append(graph.tensors[op.outputs[0]].name)
            if op.op in WEIGHT_OPS_TFLITE:
                break
            computed = [i for i in op.inputs if i in computed_tensors]
            if len(computed) != 1:
                return []
            op = producers.get(computed[0])
        else:
            return []
    return list(dict.fromkeys(names))


def keras2tflite_mixed(model: Any, representative: np.ndarray, denylist: Sequence[str],
                       per_channel: bool = True, float_head: bool = False) -> bytes:
    """Full-integer TFLite (float I/O) with the weight ops of the ``denylist`` Keras layers left in float32
    (``per_channel``: as :func:`edgekit.export.convert.keras2tflite`); ``float_head``: the classifier head
    (:func:`tflite_head_nodes`) too, so the model's output is computed in float (``PtqInt8Config.float_head``)."""
    from edgekit._tf import quiet_native_output, tf
    from edgekit.export.tflite_reader import parse_tflite

    t = tf()
    conv, gen = _tflite_converter(model, representative, per_channel)
    try:
        with quiet_native_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            debugger = t.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=gen, debug_options=t.lite.experimental.QuantizationDebugOptions())
            graph = parse_tflite(debugger.calibrated_model).subgraphs[0]
            nodes = [graph.tensors[op.outputs[0]].name for op in graph.operators
                     if op.outputs and any(names_layer(graph.tensors[op.outputs[0]].name, n) for n in denylist)]
            missing = [n for n in denylist if not any(names_layer(node, n) for node in nodes)]
            if missing:
                log.warning("TFLite mixed precision: no op found for layer(s) %s", ", ".join(missing))
            if float_head:
                head = tflite_head_nodes(graph)
                if not head:
                    log.info("TFLite int8: no classifier head found (the output is not reached from one weight op "
                             "through single-input ops); the head stays int8")
                nodes = list(dict.fromkeys([*nodes, *head]))
            debugger.options = t.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
            return bytes(debugger.get_nondebug_quantized_model())
    except ExportError:
        raise
    except Exception as e:  # the converter raises assorted types
        raise ExportError(f"TFLite mixed-precision conversion failed: {str(e).strip().splitlines()[0]}") from None


# --------------------------------------------------------------------------- ONNX


def _tags(node: Any, producers: Mapping[str, Any], constants: set[str]) -> list[str]:
    """The names that say which Keras layer a node belongs to: its own and, for a weight op, its constant inputs'
    (through a DequantizeLinear). tf2onnx names some rewritten convolutions generically (a DepthwiseConv2D with a
    bias becomes ``Conv__3``) but its bias keeps the layer's scope (``model/dw/BiasAdd/ReadVariableOp:0``)."""
    tags = [node.name]
    if node.op_type in WEIGHT_OPS_ONNX:
        for tensor in node.input[1:]:
            src = producers.get(tensor)
            if src is not None and src.op_type == "DequantizeLinear":
                tensor = src.input[0]
            if tensor in constants:
                tags.append(tensor)
    return tags


def _belongs(node: Any, layer: str, producers: Mapping[str, Any], constants: set[str]) -> bool:
    return any(names_layer(tag, layer) for tag in _tags(node, producers, constants))


def onnx_layer_nodes(path: Path, layers: Sequence[str]) -> dict[str, list[str]]:
    """Keras layer → names of its nodes in an ONNX file (tf2onnx keeps the TensorFlow scopes)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producers = {o: n for n in graph.node for o in n.output}
    constants = {i.name for i in graph.initializer}
    return {layer: [n.name for n in graph.node if _belongs(n, layer, producers, constants)] for layer in layers}


def onnx_quantize_mixed(src: Path, dst: Path, calibration: np.ndarray, cfg: Any,
                        exclude_layers: Sequence[str]) -> list[str]:
    """ONNX Runtime static QDQ quantization with edgekit's fast settings
    (:func:`edgekit.compression.quantize.ort_quantize_static`, settings ``cfg``: an ``OrtQuantConfig``) with every
    node of the ``exclude_layers`` Keras layers left in float (``nodes_to_exclude``), or with 16-bit activations
    when ``cfg.protect_with`` is ``int16``. Returns the protected node names."""
    from edgekit.compression.quantize import ort_quantize_static

    nodes = sorted({n for names in onnx_layer_nodes(src, exclude_layers).values() for n in names})
    int16 = getattr(cfg, "protect_with", "float") == "int16"
    try:
        ort_quantize_static(Path(src), Path(dst), calibration, cfg, nodes_to_exclude=[] if int16 else nodes,
                            int16_nodes=nodes if int16 else ())
    except ExportError as e:
        raise ExportError(f"mixed precision: {e}") from None
    return nodes


def onnx_layer_precisions(path: Path, layers: Sequence[str]) -> dict[str, str]:
    """Precision of each Keras layer's weight node in a QDQ ONNX file: int8 when its weight comes through
    DequantizeLinear, int16x8 when its activation input does so from 16 bits too, float32 otherwise."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producers = {o: n for n in graph.node for o in n.output}
    zero_points = {i.name: i.data_type for i in graph.initializer}
    seen: dict[str, set[str]] = {}
    for node in graph.node:
        if node.op_type not in WEIGHT_OPS_ONNX or len(node.input) < 2:
            continue
        for layer in layers:
            if _belongs(node, layer, producers, set(zero_points)):
                weight, act = producers.get(node.input[1]), producers.get(node.input[0])
                wide = (act is not None and act.op_type == "DequantizeLinear" and len(act.input) > 2
                        and zero_points.get(act.input[2]) in (onnx.TensorProto.INT16, onnx.TensorProto.UINT16))
                seen.setdefault(layer, set()).add(
                    ("int16x8" if wide else "int8") if weight is not None and weight.op_type == "DequantizeLinear"
                    else "float32")
    # a layer with several weight nodes (SeparableConv2D: depthwise + pointwise) in both precisions is 'mixed'
    return {layer: kinds.pop() if len(kinds) == 1 else "mixed" for layer, kinds in seen.items()}


# --------------------------------------------------------------------------- budgeted


def _records(layers: Sequence[Mapping[str, Any]], precisions: Mapping[str, str],
             protected: Mapping[str, str]) -> list[dict[str, str]]:
    out = []
    for row in layers:
        name = row["name"]
        got = precisions.get(name, "unknown")
        if name in protected:
            reason = protected[name]
            if got == "int16x8":
                reason += "; protected with 16-bit activations and int8 weights instead of float"
        elif got == "int8":
            q = row.get("quant") or {}
            reason = f"int8 alone costs {float(q.get('drop_pp', 0.0)):.2f} pp (SNR {q.get('snr_db')} dB)"
        else:
            reason = "the converter kept it in float"
        out.append({"name": name, "precision": got, "reason": reason})
    return out


def _val_correct(data_path: Path, fmt: str, dataset: Any) -> np.ndarray:
    from edgekit.evaluate import predict_file

    scores = predict_file(str(data_path), fmt, dataset.x_val)
    return np.asarray(scores.argmax(axis=1) == dataset.y_val)


def _measure_attempt(data_path: Path, fmt: str, dataset: Any, reference: float, budget_pp: float,
                     parent: Any, reference_correct: Any = None) -> tuple[float, dict[str, Any]]:
    """(validation accuracy, the attempt's drop and check) of a file, by the one rule
    (:func:`edgekit.compression.budget.budget_check`): the upper bound of its drop paired image by image with the
    trained model when its per-image correctness ``reference_correct`` is given, else with the Keras ``parent``
    when there is one, else the point drop."""
    from edgekit.compression.budget import budget_check

    correct = _val_correct(data_path, fmt, dataset)
    acc = float(correct.mean())
    check = budget_check(reference, acc, budget_pp, parent, None, dataset, candidate_correct=correct,
                         reference_correct=reference_correct)
    return acc, {"drop_pp": round((reference - acc) * 100.0, 3), **check}


def _lost(attempt: Mapping[str, Any]) -> str:
    """An attempt's drop for a reason: the verdict it was judged by (:func:`edgekit.rules.verdict`), else its drop."""
    return attempt.get("verdict") or f"selection drop {attempt['drop_pp']:.2f} pp"


def _budgeted(fmt: str, make: Callable[[list[str]], bytes], precisions: Callable[[bytes], dict[str, str]],
              dataset: Any, analysis: Mapping[str, Any], budget_pp: float, reference: float,
              max_attempts: int, parent: Any = None, reference_correct: Any = None) -> MixedResult:
    layers = analysis["layers"]
    reasons = {r["name"]: r.get("int8_reason") or "protected by the sensitivity analysis"
               for r in layers if r.get("protected")}
    protected = dict(reasons)
    result = MixedResult(fmt, None, budget_pp=budget_pp, reference_val_accuracy=reference)
    suffix = ".tflite" if fmt == "tflite" else ".onnx"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        for attempt in range(1, max_attempts + 1):
            data = make(sorted(protected))
            path.write_bytes(data)
            acc, check = _measure_attempt(path, fmt, dataset, reference, budget_pp, parent, reference_correct)
            result.attempts.append({"protected": sorted(protected), "val_accuracy": round(acc, 6), "bytes": len(data),
                                    **check})
            if check["held"]:
                result.data, result.val_accuracy = data, acc
                result.action = "applied" if attempt == 1 else "backed_off"
                result.layers = _records(layers, precisions(data), protected)
                if attempt > 1:
                    result.reason = f"int8 broke the budget; protected {len(protected) - len(reasons)} more layer(s)"
                return result
            nxt = next_int8_protection(layers, protected)
            if nxt is None:
                break
            protected[nxt] = (f"with this layer in int8 the {fmt} file had {_lost(result.attempts[-1])}; "
                              "it is the guiltiest layer left")
    result.action = "dropped"
    result.reason = (f"int8 breaks the {budget_pp:g} pp budget even with {len(result.attempts[-1]['protected'])} "
                     f"layer(s) kept in float "
                     f"(last: {_lost(result.attempts[-1])}); use float16 or float32 instead")
    return result


def budgeted_int8_tflite(model: Any, dataset: Any, analysis: Mapping[str, Any], *, budget_pp: float = DEFAULT_BUDGET_PP,
                         reference_val_accuracy: float | None = None, calibration_samples: int = 500,
                         max_attempts: int = 3, reference_correct: Any = None,
                         per_channel: bool = True, float_head: bool = False) -> MixedResult:
    """Int8 TFLite of a Keras ``model`` with the analysis' protected layers in float32, verified on validation data
    against ``reference_val_accuracy`` (default: the model's own); protects more layers while it breaks the budget
    (``per_channel``: as :func:`edgekit.export.convert.keras2tflite`; ``float_head``: as
    :func:`keras2tflite_mixed`)."""
    from edgekit.compression.budget import val_accuracy

    reference = val_accuracy(model, dataset) if reference_val_accuracy is None else float(reference_val_accuracy)
    calib = dataset.calibration(calibration_samples)
    names = [r["name"] for r in analysis["layers"]]

    def make(denylist: list[str]) -> bytes:
        if not denylist and not float_head:
            from edgekit.export.convert import keras2tflite

            return keras2tflite(model, quantization="int8", representative=calib, per_channel=per_channel)
        return keras2tflite_mixed(model, calib, denylist, per_channel, float_head)

    result = _budgeted("tflite", make, lambda data: tflite_layer_precisions(data, names), dataset, analysis, budget_pp,
                       reference, max_attempts, parent=model, reference_correct=reference_correct)
    if result.action == "dropped":
        _try_16x8(model, calib, dataset, result, names, reference_correct)
    return result


def keras2tflite_16x8(model: Any, representative: np.ndarray) -> bytes:
    """TFLite with int16 activations and int8 weights everywhere (the converter's 16x8 mode, float I/O)."""
    from edgekit._tf import quiet_native_output, tf

    t = tf()
    conv, _ = _tflite_converter(model, representative)
    conv.target_spec.supported_ops = [t.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    try:
        with quiet_native_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(conv.convert())
    except Exception as e:  # noqa: BLE001 - the converter raises assorted types
        raise ExportError(f"TFLite 16x8 conversion failed: {str(e).strip().splitlines()[0]}") from None


def _try_16x8(model: Any, calib: np.ndarray, dataset: Any, result: MixedResult, names: Sequence[str],
              reference_correct: Any = None) -> None:
    """Last resort before dropping int8: 16-bit activations for the whole model (kept only if it holds the budget)."""
    try:
        data = keras2tflite_16x8(model, calib)
    except ExportError as e:
        log.info("16x8 fallback unavailable: %s", e)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(data)
        acc, check = _measure_attempt(path, "tflite", dataset, result.reference_val_accuracy, result.budget_pp,
                                      model, reference_correct)
    result.attempts.append({"protected": "16x8", "val_accuracy": round(acc, 6), "bytes": len(data), **check})
    if check["held"]:
        result.data, result.val_accuracy, result.action = data, acc, "fallback_16x8"
        result.layers = [{"name": n, "precision": "int16x8", "reason": "int8 activations broke the budget; "
                          "16-bit activations with int8 weights hold it"} for n in names]
        result.reason += "; 16x8 (int16 activations, int8 weights) holds the budget and is used instead"


def budgeted_int8_onnx(onnx_path: Path, dataset: Any, analysis: Mapping[str, Any], *, reference_val_accuracy: float,
                       budget_pp: float = DEFAULT_BUDGET_PP, cfg: Any = None, max_attempts: int = 3,
                       parent: Any = None, reference_correct: Any = None) -> MixedResult:
    """QDQ int8 ONNX of an fp32 ONNX file (exported from the analysed Keras model, ``parent``: when given, each
    attempt is judged on the bound of its drop paired with it) with the protected layers' nodes excluded;
    verified and backed off like :func:`budgeted_int8_tflite`."""
    from edgekit.compression.quantize import OrtQuantConfig

    cfg = cfg or OrtQuantConfig()
    calib = dataset.calibration(cfg.calibration_samples)
    names = [r["name"] for r in analysis["layers"]]

    def make(exclude: list[str]) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            dst = Path(tmp) / "q.onnx"
            onnx_quantize_mixed(Path(onnx_path), dst, calib, cfg, exclude)
            return dst.read_bytes()

    def precisions(data: bytes) -> dict[str, str]:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "q.onnx"
            p.write_bytes(data)
            return onnx_layer_precisions(p, names)

    return _budgeted("onnx", make, precisions, dataset, analysis, budget_pp, float(reference_val_accuracy),
                     max_attempts, parent=parent, reference_correct=reference_correct)
