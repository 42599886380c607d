"""ONNX Runtime static quantization (QDQ) of an fp32 ONNX model, and a QDQ layout pass for ORT's CPU kernels.

TFLite quantization happens inside the converter (:func:`edgekit.export.convert.keras2tflite`);
both are calibrated on the same samples (``Dataset.calibration``).

Why a plain QDQ int8 ONNX file is *slower* than fp32 on x86, and what the layout pass does about it
(ONNX Runtime 1.32, CPU EP, measured with ORT's profiler and its ``optimized_model_filepath`` dump;
``benchmarks/int8_speed.py`` writes the evidence):

1. A convolution with a tiny reduction (the first layer: 1 input channel × 3×3 = 9 MACs per output)
   is 4–7× slower as ``QLinearConv`` than as the fp32 NCHWc ``Conv``: MLAS' int8 kernels pad the
   reduction, so C_in = 1 costs as much as C_in = 8–16. After structured pruning the later layers
   shrink and this one layer dominates. :func:`ort_fast_qdq` keeps such convolutions in float
   (their weights are < 0.5 % of the model).
2. A float layer in front of a ``MaxPool`` then trips ORT's ``QDQPropagationTransformer``: it moves
   the QuantizeLinear in front of the MaxPool, which then runs as an int8 *NCHW* MaxPool, ~40×
   slower than the NHWC one ORT uses inside an int8 block. :func:`ort_fast_qdq` pools in float and
   puts a ReLU between the MaxPool and the QuantizeLinear (max-pool and ReLU commute); the ReLU
   stops the propagation and ORT's ``ReluQuantFusion`` later removes it (zero point = type minimum).
3. QAT (TFMOT) ranges after a ReLU start at [-6, 6] and the moving average never reaches 0 in a
   short fine-tuning, so the int8 zero point is -2…-18 instead of -128: half the int8 range is wasted
   on values a ReLU never produces, and ORT cannot fold ``Relu → QuantizeLinear`` into the int8 conv,
   so every QAT layer runs as DequantizeLinear → float Conv → QuantizeLinear (0.2–0.4× of fp32).
   :func:`relu_ranges_from_zero` starts those ranges at 0 before QAT fine-tuning (a ReLU's batch
   minimum is 0, so the moving average keeps them there and the int8 file matches the trained model).

4. Residual models (BN folded, ``Add`` joins, 1x1 projections): ORT runs x86 int8 as U8 activations × S8
   weights and rewrites an int8 ``Q → DQ`` *pair* to uint8 itself, but a tensor read by a conv and a residual
   ``Add`` (or by a conv and a projection) gets one DequantizeLinear per reader first, is no pair, stays int8,
   and nothing reading it fuses: a ResNet-8 ran 4 of its 9 convs and 2 of its 3 Adds as DequantizeLinear →
   float op → QuantizeLinear, slower than fp32. :func:`ort_fast_qdq` writes uint8 activations (the values
   ORT would run), and keeps only the thin convolutions that *lead* the model in float: a thin 1x1
   projection inside an int8 stage stays int8 (in float it would cut the NHWC int8 chain twice).

Per-channel against per-tensor made no measurable difference (also not for depthwise convolutions). The
QOperator format with int8 activations skips the uint8 rewrite and hits a slow S8S8 kernel (4× slower), so
edgekit writes QDQ. Where int8 cannot win at all (measured by ``benchmarks/int8_zoo.py``): on x86 without VNNI
(AVX2 only) MLAS' int8 depthwise kernel is ~2× slower than the fp32 NCHWc one, and a compact model of a few
hundred thousand MACs spends batch 1 in per-node overhead, so its int8 file is not faster; the layers kept in
float say so in the stage's int8 record, and the chooser leaves a file slower than its fp32 baseline out.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.errors import ExportError, UsageError

log = logging.getLogger(__name__)

Calibration = Literal["minmax", "entropy", "percentile"]

HISTOGRAM_MAX_SAMPLES = 1000
"""Cap on calibration samples for entropy/percentile: ONNX Runtime's histogram calibrators keep every
intermediate activation of every sample in memory before building histograms. Measured on the reference
CNN: 500 samples → 418 MB peak RSS, 1,200 → 729 MB (~0.26 MB per sample), minmax stays at ~190 MB."""


@dataclass(frozen=True)
class OrtQuantConfig:
    """Settings of ONNX Runtime static QDQ quantization."""

    activation_type: Literal["int8", "uint8"] = field(default="int8", metadata={"help": "activation integer type"})
    weight_type: Literal["int8", "uint8"] = field(default="int8", metadata={"help": "weight integer type"})
    per_channel: bool = field(default=True, metadata={"help": "one scale per output channel of each weight"})
    reduce_range: bool = field(default=False, metadata={
        "help": "7-bit weights (avoids int16 overflow on CPUs without VNNI)"})
    symmetric_activations: bool = field(default=False, metadata={
        "help": "zero point 0 for activations (TensorRT needs it)"})
    dedicated_qdq_pair: bool = field(default=False, metadata={
        "help": "one Q/DQ pair per consumer (TensorRT expects it)"})
    calibration: Calibration = field(default="minmax", metadata={"help": "how activation ranges are computed"})
    calibration_samples: int = field(default=500, metadata={"help": "training images used to calibrate"})
    float_thin_convs: bool = field(default=True, metadata={"help": "lay the QDQ graph out for ORT's CPU kernels "
                                   "(ort_fast_qdq): the leading convolutions with fewer than THIN_CONV_DEPTH MACs per "
                                   "output (the first layer) stay in float, where ORT's int8 kernels are slower than "
                                   "fp32, and activations are written as uint8 so residual joins fuse"})
    float_head: bool = field(default=True, metadata={
        "help": "keep the classifier head (the last weight node and what follows it to the output) in float: int8 "
                "probabilities step 1/256 and tie on close calls, which flips the top-1 class of up to 1 % of images "
                "(onnx_head_nodes)"})
    protect_with: Literal["float", "int16"] = field(default="float", metadata={
        "help": "how mixed precision protects a layer whose int8 breaks the budget: leave it in float, or give it "
                "16-bit activations with int8 weights (smaller file; ORT's CPU EP has no 16-bit kernels, so it runs "
                "DequantizeLinear + float op: see benchmarks/onnx_int16_protect.py)"})

    def validate(self, where: str = "quantize") -> None:
        if self.calibration_samples < 1:
            raise UsageError(f"{where}.calibration_samples: must be at least 1")


class _Reader:
    """CalibrationDataReader over a NumPy array, one image per call."""

    def __init__(self, input_name: str, x: np.ndarray) -> None:
        self._it = iter([{input_name: x[i : i + 1].astype(np.float32)} for i in range(len(x))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - not used by quantize_static's single pass
        pass


def after_fusion(model: Any, nodes: Sequence[str]) -> list[str]:
    """``nodes`` as named in ``model`` after ORT's pre-processing, which fuses some of them and renames the result
    (``dense/MatMul`` + ``dense/BiasAdd`` → Gemm ``dense/MatMul/MatMulAddFusion``): a name that is gone maps to
    the nodes named under it."""
    present = [n.name for n in model.graph.node]
    have = set(present)
    out: list[str] = []
    for name in nodes:
        found = [name] if name in have else [n for n in present if n.startswith(f"{name}/")]
        out += [n for n in found if n not in out]
    return out


HEAD_OPS_ONNX = ("MatMul", "Gemm", "Conv")
"""The weight ops a classifier head ends at (:func:`onnx_head_nodes`)."""
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def onnx_head_nodes(model: Any) -> list[Any]:
    """The classifier head of an ONNX model (float or QDQ): the nodes from each graph output back to, and including,
    the first weight node (``MatMul``/``Gemm``/``Conv``), e.g. ``MatMul → Add → Softmax``, skipping Q/DQ pairs. Empty
    when the path back joins two computed tensors first (no single head)."""
    graph = model.graph
    producers = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}

    def constant(tensor: str) -> bool:
        node = producers.get(tensor)
        return tensor in inits or (node is not None and node.op_type == "DequantizeLinear" and node.input[0] in inits)

    computed = (set(producers) | {i.name for i in graph.input}) - inits
    head: list[Any] = []
    for out in graph.output:
        node = producers.get(out.name)
        while node is not None and len(head) < 32:
            if node.op_type in _QDQ:
                node = producers.get(node.input[0])
                continue
            if not any(node is n for n in head):
                head.append(node)
            if node.op_type in HEAD_OPS_ONNX:
                break
            data = [i for i in node.input if i in computed and not constant(i)]
            if len(data) != 1:
                return []
            node = producers.get(data[0])
        else:
            return []
    return head


def float_head_outputs(model: Any) -> int:
    """Leave the classifier head's outputs (:func:`onnx_head_nodes`) in float in a QDQ ``model``: an int8 softmax
    output steps by 1/256, so two classes within that of each other tie and argmax takes the lower index. Every
    QuantizeLinear → DequantizeLinear pair on a tensor a head node produces is removed; the head's *input* and
    weights stay int8, so ORT still fuses it (``QGemm`` with a float output) and the layer in front of it.
    Returns the pairs removed."""
    head = onnx_head_nodes(model)
    gr = _Graph(model.graph)
    removed = 0
    for q in [n for n in gr.g.node if n.op_type == "QuantizeLinear"]:
        producer = next((n for n in head if q.input[0] in n.output), None)
        readers = gr.consumers.get(q.output[0], [])
        if producer is None or q.output[0] in gr.outputs or any(n.op_type != "DequantizeLinear" for n in readers):
            continue
        value = next((dq.output[0] for dq in readers if dq.output[0] in gr.outputs), q.input[0])
        if value != q.input[0]:  # the graph output: the head node now writes it in float
            producer.output[list(producer.output).index(q.input[0])] = value
            gr.rename(q.input[0], value)
        for dq in readers:
            gr.rename(dq.output[0], value)
            gr.g.node.remove(dq)
        gr.g.node.remove(q)
        gr.refresh()
        removed += 1
    return removed


def int16_overrides(model: Any, nodes: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """ORT ``TensorQuantOverrides`` giving the activation input and output of each named node 16-bit
    quantization (QInt16); its weights stay as the config says (int8)."""
    from onnxruntime.quantization import QuantType

    wanted = set(nodes)
    weights = {init.name for init in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    tensors: list[str] = []
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        found = [node.output[0]]
        current = node.input[0]
        while current:  # a Reshape/Squeeze/... in front shares its input's quantization: widen that too
            found.append(current)
            before = producers.get(current)
            current = before.input[0] if before is not None and before.op_type in _MOVES_DATA else ""
        tensors += [t for t in found if t and t not in weights and t not in tensors]
    return {t: [{"quant_type": QuantType.QInt16}] for t in tensors}


def ort_quantize_static(src: Path, dst: Path, calibration: np.ndarray, cfg: OrtQuantConfig,
                        nodes_to_exclude: Sequence[str] | None = None, int16_nodes: Sequence[str] = ()) -> int:
    """Quantize ONNX model ``src`` into QDQ model ``dst`` (written atomically by the caller's dst path).

    ``nodes_to_exclude``: node names left in float (mixed precision, :mod:`edgekit.compression.mixed`);
    ``int16_nodes``: node names whose activations are quantized to 16 bits instead (:func:`int16_overrides`).

    Returns the number of calibration samples used (entropy/percentile: at most ``HISTOGRAM_MAX_SAMPLES``).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    qtypes = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    if cfg.calibration != "minmax" and len(calibration) > HISTOGRAM_MAX_SAMPLES:
        log.info("%s calibration: using %d of %d samples (memory cap)", cfg.calibration, HISTOGRAM_MAX_SAMPLES,
                 len(calibration))
        calibration = calibration[:HISTOGRAM_MAX_SAMPLES]
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as e:  # pre-processing is an optimisation; quantize the original if it fails
            log.debug("quant_pre_process failed (%s); quantizing the model as is", e)
            pre = src
        extra: dict[str, Any] = {}
        graph = onnx.load(str(pre), load_external_data=False)
        nodes_to_exclude = after_fusion(graph, nodes_to_exclude or ())
        if int16_nodes:
            extra["TensorQuantOverrides"] = int16_overrides(graph, after_fusion(graph, int16_nodes))
            extra["UseQDQContribOps"] = True  # 16-bit Q/DQ below opset 21: ORT's com.microsoft ops
        try:
            quantize_static(
                str(pre), str(dst), _Reader(input_name, calibration),
                quant_format=QuantFormat.QDQ, activation_type=qtypes[cfg.activation_type],
                weight_type=qtypes[cfg.weight_type], per_channel=cfg.per_channel, reduce_range=cfg.reduce_range,
                calibrate_method=methods[cfg.calibration], nodes_to_exclude=list(nodes_to_exclude or []),
                extra_options={"ActivationSymmetric": cfg.symmetric_activations, "WeightSymmetric": True,
                               "DedicatedQDQPair": cfg.dedicated_qdq_pair, **extra},
            )
        except Exception as e:
            raise ExportError(
                f"ONNX Runtime quantization of {src.name} failed: {str(e).strip().splitlines()[0]}") from None
    if cfg.float_head or cfg.float_thin_convs:
        model = onnx.load(str(dst))
        changed = {"float head outputs": float_head_outputs(model) if cfg.float_head else 0}
        if cfg.float_thin_convs:
            changed.update(ort_fast_qdq(model))
        if any(changed.values()):
            log.info("ORT layout pass on %s: %s", dst.name, ", ".join(f"{k} {v}" for k, v in changed.items() if v))
            onnx.save(model, str(dst))
    return len(calibration)


# --------------------------------------------------------------------------- QDQ layout pass for ONNX Runtime

THIN_CONV_DEPTH = 32
"""A Conv whose reduction (input channels × kernel height × width) is below this stays in float when it leads the
model (reads the graph input through float ops only, :func:`_reads_float`). Measured with ORT 1.32 on AVX-512
VNNI, one thread, 32 filters on 28×28: K = 9 (1 channel, 3×3) int8 QLinearConv 470 µs vs fp32 Conv 62 µs at
batch 32; K = 36 (4 channels) int8 466 µs vs fp32 630 µs. On AVX2 (no VNNI), batch 32: a ResNet-8 stem (K = 27)
1141 µs int8 vs 534 µs fp32; a compact model's stem (K = 9) 209 vs 48 µs, its depthwise conv 123 vs 58 µs."""

_MOVES_DATA = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze")
_QMIN = {2: 0, 3: -128, 4: 0, 5: -32768}  # onnx.TensorProto.UINT8 / INT8 / UINT16 / INT16 → the type's minimum
_QMAX = {2: 255, 3: 127, 4: 65535, 5: 32767}  # … and maximum (16 bits: protect_with="int16")


class _Graph:
    """Producer/consumer look-ups over an ONNX graph, rebuilt after each edit."""

    def __init__(self, graph: Any) -> None:
        self.g = graph
        self.refresh()

    def refresh(self) -> None:
        from onnx import numpy_helper

        self.inits = {i.name: i for i in self.g.initializer}
        self.arrays = {n: numpy_helper.to_array(i) for n, i in self.inits.items()}
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in self.g.output}

    def rename(self, old: str, new: str) -> None:
        """Make every node reading tensor ``old`` read ``new`` (the consumers as of the last refresh)."""
        for node in self.consumers.get(old, []):
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    def only_consumer(self, tensor: str) -> Any:
        """The one node reading ``tensor`` (not a graph output), else None. Typed ``Any``, not ``Any | None``: callers
        compare it with ``is`` to nodes they have narrowed, and mypy would widen those back to ``Any | None``."""
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in self.outputs else None

    def dequantized(self, node: Any) -> Any:
        """The float value of a DequantizeLinear of constant initializers."""
        x = self.arrays[node.input[0]].astype(np.float64)
        scale = self.arrays[node.input[1]].astype(np.float64)
        zero = self.arrays[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1 and x.ndim > 1:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = np.reshape(zero, shape) if np.ndim(zero) == 1 else zero
        return ((x - zero) * scale).astype(np.float32)

    def const_dq(self, tensor: str) -> Any | None:
        node = self.producer.get(tensor)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in self.arrays:
            return node
        return None

    def same_qparams(self, a: Any, b: Any) -> bool:
        if len(a.input) != len(b.input):
            return False
        for x, y in zip(a.input[1:], b.input[1:]):
            same_constant = x in self.arrays and y in self.arrays and np.array_equal(self.arrays[x], self.arrays[y])
            if x != y and not same_constant:
                return False
        return True

    def zero_point_is_min(self, q: Any) -> bool:
        if len(q.input) < 3 or q.input[2] not in self.inits:
            return False  # no zero point: uint8 with zero point 0 is the minimum, but be strict
        zp = self.inits[q.input[2]]
        return zp.data_type in _QMIN and bool(np.all(self.arrays[q.input[2]] == _QMIN[zp.data_type]))

    def prune(self) -> None:
        """Drop Q/DQ nodes nobody reads and initializers no node uses."""
        while True:
            self.refresh()
            dead = [n for n in self.g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                    and not any(self.consumers.get(o) or o in self.outputs for o in n.output)]
            if not dead:
                break
            for n in dead:
                self.g.node.remove(n)
        used = {i for n in self.g.node for i in n.input} | self.outputs
        for init in [i for i in self.g.initializer if i.name not in used]:
            self.g.initializer.remove(init)
        self.refresh()


def _float_thin_convs(gr: _Graph, depth: int) -> int:
    """Run the convolutions that lead the model with a reduction below ``depth`` in float (weights and bias
    dequantized offline)."""
    from onnx import numpy_helper

    done = 0
    pending: list[tuple[str, Any]] = []
    floats = _float_origin(gr)
    for conv in [n for n in gr.g.node if n.op_type == "Conv"]:
        w_dq = gr.const_dq(conv.input[1])
        if w_dq is None:
            continue
        w = gr.arrays[w_dq.input[0]]
        if w.ndim < 3 or int(np.prod(w.shape[1:])) >= depth or not _reads_float(gr, conv, floats):
            continue
        for slot in (1, 2):
            if len(conv.input) <= slot or not conv.input[slot]:
                continue
            dq = gr.const_dq(conv.input[slot])
            if dq is None:
                continue
            name = f"{dq.output[0]}_float"
            gr.g.initializer.append(numpy_helper.from_array(gr.dequantized(dq), name))
            conv.input[slot] = name
        # The input: read the float tensor before its QuantizeLinear (moving any Reshape/Transpose in
        # between to float), so the layer sees exactly what the fp32 model sees. A QuantizeLinear whose zero
        # point is the type's minimum stands for the ReLU/ReLU6 that quantize_static removed (the Q clamps):
        # the float tensor then gets that clamp back as a Clip (without it a depthwise or 1x1 conv after a
        # Conv-BN-ReLU read negative values: 12.8 % accuracy on the compact model).
        x_dq = gr.producer.get(conv.input[0])
        if x_dq is not None and x_dq.op_type == "DequantizeLinear":
            before = gr.producer.get(x_dq.input[0])
            if before is not None and before.op_type == "QuantizeLinear":
                conv.input[0] = _clamped(gr, before, conv, pending)
            elif (before is not None and before.op_type in _MOVES_DATA and gr.only_consumer(before.output[0]) is x_dq
                  and gr.producer.get(before.input[0]) is not None
                  and gr.producer[before.input[0]].op_type == "QuantizeLinear"
                  and gr.only_consumer(before.input[0]) is before):
                before.input[0] = _clamped(gr, gr.producer[before.input[0]], before, pending)
                conv.input[0] = before.output[0]
        done += 1
        gr.refresh()
        floats = _float_from(gr, floats | {clip.output[0] for _, clip in pending})
    _place_clips(gr, pending)
    return done


def _float_origin(gr: _Graph) -> set[str]:
    """Tensors computed in float from the graph input alone: the input, and the outputs of ops (no
    DequantizeLinear) whose activation inputs are all such tensors (constants and weight Q/DQ aside)."""
    return _float_from(gr, {i.name for i in gr.g.input if i.name not in gr.inits})


def _float_from(gr: _Graph, out: set[str]) -> set[str]:
    """``out`` and every tensor computed in float from it alone (see :func:`_float_origin`)."""
    for node in gr.g.node:
        if node.op_type == "DequantizeLinear":
            continue
        acts = [i for i in node.input if i and i not in gr.inits and gr.const_dq(i) is None
                and not (node.op_type == "QuantizeLinear" and i != node.input[0])]
        if acts and all(i in out for i in acts):
            out.update(node.output)
    return out


def _reads_float(gr: _Graph, conv: Any, floats: set[str]) -> bool:
    """Whether ``conv``'s activation is DequantizeLinear(QuantizeLinear(x)) of a float-origin ``x`` (through any
    Reshape/Transpose): the conv leads the model, before its first int8 block. A thin conv inside an int8 block
    (a 1x1 projection shortcut of a residual stage) stays int8: in float it would add a DequantizeLinear →
    float Conv → QuantizeLinear round trip and split the block ORT fuses (the NHWC int8 chain)."""
    tensor = conv.input[0]
    while (node := gr.producer.get(tensor)) is not None and node.op_type in (*_MOVES_DATA, "DequantizeLinear",
                                                                           "QuantizeLinear"):
        tensor = node.input[0]
        if node.op_type == "QuantizeLinear":
            break
    return tensor in floats


def _clamped(gr: _Graph, q: Any, consumer: Any, pending: list[tuple[str, Any]]) -> str:
    """The float input of QuantizeLinear ``q`` for ``consumer``, clamped as ``q`` clamps when ``q`` stands for a
    ReLU/ReLU6 that quantize_static removed: zero point at the type's minimum, and the tensor computed by an op
    (not a graph input moved by Reshape/Transpose, not a kept ReLU). The Clip is queued in ``pending``
    (consumer's first output, node) and placed by :func:`_place_clips`."""
    from onnx import helper, numpy_helper

    src = q.input[0]
    origin, tensor = None, src
    while (origin := gr.producer.get(tensor)) is not None and origin.op_type in _MOVES_DATA:
        tensor = origin.input[0]
    if (origin is None or origin.op_type in ("Relu", "Clip") or not gr.zero_point_is_min(q)
            or q.input[1] not in gr.arrays or np.ndim(gr.arrays[q.input[1]]) != 0):
        return src
    zp = gr.inits[q.input[2]]
    qmax = _QMAX[zp.data_type]
    hi = (qmax - float(gr.arrays[q.input[2]])) * float(gr.arrays[q.input[1]])
    key = consumer.output[0]
    lo_name, hi_name, out = f"{key}_clip_min", f"{key}_clip_max", f"{key}_clipped_input"
    gr.g.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), lo_name),
                             numpy_helper.from_array(np.array(hi, np.float32), hi_name)])
    pending.append((key, helper.make_node("Clip", [src, lo_name, hi_name], [out], name=f"{key}_clip")))
    return out


def _place_clips(gr: _Graph, pending: list[tuple[str, Any]]) -> None:
    """Put each queued Clip right before the node whose first output is its key (one rebuild of the node list)."""
    if not pending:
        return
    before = dict(pending)
    nodes = []
    for n in gr.g.node:
        if n.output and n.output[0] in before:
            nodes.append(before[n.output[0]])
        nodes.append(n)
    del gr.g.node[:]
    gr.g.node.extend(nodes)
    gr.refresh()


def _pool_in_float(gr: _Graph) -> int:
    """``float op → [Relu] → Q → DQ → MaxPool → Q' → DQ'`` (same Q params) becomes
    ``float op → MaxPool → Relu → Q' → DQ'``.

    Max-pooling commutes with a monotone quantize/dequantize and with ReLU, so the values are the same;
    the ReLU between MaxPool and Q' keeps ORT's QDQ propagation from pulling Q' back in front of the
    MaxPool (an int8 NCHW MaxPool is slow), and ORT removes it again when Q' clamps at zero.
    """
    from onnx import helper

    done = 0
    for pool in [n for n in gr.g.node if n.op_type == "MaxPool"]:
        dq1 = gr.producer.get(pool.input[0])
        q1 = gr.producer.get(dq1.input[0]) if dq1 is not None and dq1.op_type == "DequantizeLinear" else None
        if q1 is None or q1.op_type != "QuantizeLinear" or len(pool.output) != 1:
            continue
        q2 = gr.only_consumer(pool.output[0])
        if (q2 is None or q2.op_type != "QuantizeLinear" or not gr.same_qparams(q1, q2)
                or gr.only_consumer(q1.output[0]) is not dq1 or gr.only_consumer(dq1.output[0]) is not pool):
            continue
        src = gr.producer.get(q1.input[0])
        relu = src if src is not None and src.op_type == "Relu" and gr.only_consumer(src.output[0]) is q1 else None
        float_in = relu.input[0] if relu is not None else q1.input[0]
        feeder = gr.producer.get(float_in)
        if feeder is None or feeder.op_type in ("DequantizeLinear", "QuantizeLinear"):
            continue  # an int8 block: ORT fuses it as it is
        if relu is None and not gr.zero_point_is_min(q1):
            continue  # no ReLU to put after the pool, and the Q does not clamp at zero either
        pooled = f"{pool.output[0]}_float"
        pool.input[0] = float_in
        pool.output[0] = pooled
        new_relu = helper.make_node("Relu", [pooled], [f"{pooled}_relu"], name=f"{pool.name}_relu")
        q2.input[0] = new_relu.output[0]
        nodes = list(gr.g.node)
        for dead in (q1, dq1, *([relu] if relu is not None else [])):
            nodes.remove(dead)
        nodes.insert(nodes.index(pool) + 1, new_relu)
        del gr.g.node[:]
        gr.g.node.extend(nodes)
        gr.refresh()
        done += 1
    return done


def _fold_relus(gr: _Graph) -> int:
    """``Relu → QuantizeLinear`` whose zero point is the type's minimum: drop the Relu (the Q clamps at 0).

    ``quantize_static`` writes graphs this way; ``tflite2onnx`` keeps the Relu, and ORT folds it only
    after its QDQ fusions ran, so a ``MatMul → Add → Relu → Q`` stayed a float Gemm."""
    done = 0
    for relu in [n for n in gr.g.node if n.op_type == "Relu"]:
        q = gr.only_consumer(relu.output[0])
        src = gr.producer.get(relu.input[0])
        if q is None or q.op_type != "QuantizeLinear" or not gr.zero_point_is_min(q) or (
                src is not None and src.op_type == "MaxPool"):  # the float pool's ReLU stays (see _pool_in_float)
            continue
        q.input[0] = relu.input[0]
        gr.g.node.remove(relu)
        gr.refresh()
        done += 1
    return done


def _dequantize_before_moves(gr: _Graph) -> int:
    """``Q → Transpose/Reshape… → DQ`` (int8 data movement) becomes ``Q → DQ → Transpose/Reshape… → Q → DQ``.

    That is the shape ``quantize_static`` writes, which ORT fuses (int8 NHWC MaxPool before it, QGemm
    after it); with the int8 Transpose of a ``tflite2onnx`` graph the MaxPool and Gemm stayed float."""
    from onnx import helper

    done = 0
    for q in [n for n in gr.g.node if n.op_type == "QuantizeLinear"]:
        chain, tensor = [], q.output[0]
        while (nxt := gr.only_consumer(tensor)) is not None and nxt.op_type in _MOVES_DATA:
            chain.append(nxt)
            tensor = nxt.output[0]
        dq = gr.only_consumer(tensor)
        if not chain or dq is None or dq.op_type != "DequantizeLinear" or not gr.same_qparams(q, dq):
            continue
        mid = f"{q.output[0]}_dq"
        new_dq = helper.make_node("DequantizeLinear", [q.output[0], *q.input[1:]], [mid], name=f"{q.name}_dq")
        chain[0].input[0] = mid
        requant = f"{tensor}_q"
        new_q = helper.make_node("QuantizeLinear", [tensor, *q.input[1:]], [requant], name=f"{dq.name}_q")
        dq.input[0] = requant
        nodes = list(gr.g.node)
        nodes.insert(nodes.index(q) + 1, new_dq)
        nodes.insert(nodes.index(dq), new_q)
        del gr.g.node[:]
        gr.g.node.extend(nodes)
        gr.refresh()
        done += 1
    return done


def _unsigned_activations(gr: _Graph) -> int:
    """Every int8 activation ``QuantizeLinear`` and the ``DequantizeLinear`` nodes reading it become uint8 (zero
    point + 128, same scale): the same values, in the type ORT's x86 kernels run (U8 activations × S8 weights).

    ORT rewrites an int8 Q → DQ *pair* to uint8 itself (``QDQS8ToU8Transformer``), but only a pair: after it
    gave each consumer of a shared tensor its own DequantizeLinear (``EnsureUniqueDQForNodeUnit``), a Q read by
    a residual ``Add`` and a conv (or by a conv and a 1x1 projection) has two, stays int8, and x86 fuses no
    int8-activation node: both consumers ran as DequantizeLinear → float op → QuantizeLinear (ResNet-8: 4 of
    9 convs and 2 of 3 Adds), slower than the fp32 file. Weights stay int8; 16-bit activations are left as they
    are; a Q whose output is a graph output, or read by anything but DequantizeLinear, keeps its type. A graph
    without a shared activation (a plain chain) is left as it is: ORT converts its pairs, and ARM64 runs int8
    activations as they are."""
    from onnx import TensorProto, numpy_helper

    shared = any(len(gr.consumers.get(q.output[0], [])) > 1
                 or sum(len(gr.consumers.get(dq.output[0], [])) for dq in gr.consumers.get(q.output[0], [])) > 1
                 for q in gr.g.node if q.op_type == "QuantizeLinear")
    if not shared:
        return 0
    done = 0
    renamed: dict[str, str] = {}
    for q in [n for n in gr.g.node if n.op_type == "QuantizeLinear"]:
        zp = gr.inits.get(q.input[2]) if len(q.input) > 2 else None
        readers = gr.consumers.get(q.output[0], [])
        if (zp is None or zp.data_type != TensorProto.INT8 or np.ndim(gr.arrays[zp.name]) != 0
                or q.output[0] in gr.outputs or not readers
                or any(r.op_type != "DequantizeLinear" or r.input[2:3] != q.input[2:3] for r in readers)):
            continue
        if zp.name not in renamed:
            renamed[zp.name] = f"{zp.name}_u8"
            value = np.asarray(gr.arrays[zp.name], np.int16) + 128
            gr.g.initializer.append(numpy_helper.from_array(value.astype(np.uint8), renamed[zp.name]))
        for node in (q, *readers):
            node.input[2] = renamed[zp.name]
        done += 1
    return done


def ort_fast_qdq(model: Any, depth: int = THIN_CONV_DEPTH) -> dict[str, int]:
    """Rewrite a QDQ ONNX model (in place) so ONNX Runtime's CPU EP runs it faster than its fp32 parent.

    Keeps the thin convolutions (reduction < ``depth``) that lead the model in float and pools in float in front
    of the first int8 layer; folds ``Relu → Q``, dequantizes before int8 Transpose/Reshape chains as
    ``quantize_static`` does, and writes uint8 activations so shared tensors (residual joins) fuse too (see the
    module docstring for the profiler evidence). Works on
    ``quantize_static`` output and on ``tflite2onnx`` output of an int8 TFLite model (PTQ or QAT).
    Returns what was changed.
    """
    gr = _Graph(model.graph)
    changed = {"folded ReLUs": _fold_relus(gr), "float convolutions": _float_thin_convs(gr, depth)}
    changed["float max-pools"] = _pool_in_float(gr) if changed["float convolutions"] else 0
    changed["dequantized moves"] = _dequantize_before_moves(gr)
    changed["uint8 activations"] = _unsigned_activations(gr)
    if any(changed.values()):
        gr.prune()
        del model.graph.value_info[:]  # shapes/types of rewired tensors are stale; ORT infers them
    return changed


def ort_fast_qdq_bytes(data: bytes, depth: int = THIN_CONV_DEPTH) -> bytes:
    """:func:`ort_fast_qdq` on a serialized model; returns the input unchanged when nothing applies."""
    import onnx

    model = onnx.load_from_string(data)
    if not any(ort_fast_qdq(model, depth).values()):
        return data
    return model.SerializeToString()


# --------------------------------------------------------------------------- QAT ranges

_RELU_NAMES = ("relu", "relu6")


def relu_ranges_from_zero(model: Any) -> int:
    """Start the learned range of every fake-quantized ReLU output of a TFMOT QAT model at 0 (in place).

    TFMOT initialises post-activation ranges at [-6, 6] and moves them by a moving average, so after a
    short fine-tuning a ReLU output still has min ≈ -2…-5: the int8 zero point is -2…-18 instead of
    -128, half the codes are never used, and ONNX Runtime cannot fold the ReLU into the int8 conv.
    A ReLU output is never negative, so min = 0 loses nothing. Call it on the QAT model before
    fine-tuning: the moving average of a ReLU's batch minimum (0) then keeps it at 0, and the converted
    int8 model computes what the fine-tuned model computed. Returns the number of ranges changed.
    """
    changed = 0
    for layer in _all_layers(model):
        inner = getattr(layer, "layer", None)
        act = getattr(inner, "activation", None)
        fn = getattr(act, "activation", act)  # TFMOT wraps it in QuantizeAwareActivation
        is_relu = getattr(fn, "__name__", "") in _RELU_NAMES or type(inner).__name__ == "ReLU"
        if not is_relu:
            continue
        for v in layer.weights:
            name = v.name.split("/")[-1]
            if name.startswith(("post_activation_min", "output_min")) and float(np.min(v.numpy())) < 0.0:
                v.assign(np.maximum(v.numpy(), 0.0).astype(v.dtype.as_numpy_dtype))
                changed += 1
    return changed


def _all_layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers") and not hasattr(layer, "layer"):
            out.extend(_all_layers(layer))
    return out
