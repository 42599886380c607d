"""Model conversions, one small typed function per source → target pair.

Each returns the serialized model bytes; writing them (atomically) and
verifying them against the parent is the caller's job.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from typing import Any, Literal

import numpy as np

from edgekit import interrupts
from edgekit._tf import quiet_native_output, tf
from edgekit.errors import ExportError
from edgekit.export.tflite_reader import parse_tflite

log = logging.getLogger(__name__)

ONNX_OPSET = 17
INPUT_NAME = "input"

TFLiteQuant = Literal["none", "int8", "float16", "dynamic"]


def keras2tflite(model: Any, *, quantization: TFLiteQuant = "none", representative: np.ndarray | None = None,
                 int8_io: bool = False, sparse: bool = False, per_channel: bool = True) -> bytes:
    """Convert a tf_keras model to TFLite.

    ``int8``: full-integer post-training quantization calibrated on ``representative``
    (float model I/O unless ``int8_io``); ``float16``: float16 weights;
    ``dynamic``: int8 weights with float activations (dynamic range).
    A QAT model (TFMOT ``quantize_model``) converts with ``dynamic`` or ``int8`` and
    keeps the ranges it learned. ``sparse``: store pruned (mostly-zero) weights in
    TFLite's sparse tensor encoding (DENSIFY at load time), so the raw file shrinks.
    ``per_channel=False`` (``int8``): one scale per weight tensor instead of one per output channel; on a model of
    a few thousand weights the per-channel scales and int64 zero points are a tenth of the file (the smallest
    file's table, ``benchmarks/smallest_file.py``).
    """
    t = tf()
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [t.lite.Optimize.DEFAULT] if quantization != "none" else []
    if sparse:
        optimizations.append(t.lite.Optimize.EXPERIMENTAL_SPARSITY)
    conv.optimizations = optimizations
    if quantization == "int8":
        if representative is None or len(representative) == 0:
            raise ExportError("int8 TFLite quantization needs a representative dataset")
        rep = representative.astype(np.float32)

        def gen() -> Any:
            for i in range(len(rep)):
                yield [rep[i : i + 1]]

        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv._experimental_disable_per_channel = not per_channel
        if int8_io:
            conv.inference_input_type = t.int8
            conv.inference_output_type = t.int8
    elif quantization == "float16":
        conv.target_spec.supported_types = [t.float16]
    try:
        # The converter prints a summary line from C++ and warns about statistics it does not need.
        with quiet_native_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return bytes(conv.convert())
    except Exception as e:  # the converter raises assorted ConverterError/ValueError types
        raise ExportError(f"TFLite conversion failed: {str(e).strip().splitlines()[0]}") from None


def canonical_node_names(proto: Any) -> None:
    """Renumber the ``__N`` suffixes tf2onnx gives the names (and symbolic dims) it makes, in graph order.

    tf2onnx draws N from one process-wide counter, so the same model converted after other
    conversions (e.g. when a run reuses cached parents) got other names and other bytes."""
    import re

    graph = proto.graph
    named = [*graph.input, *graph.output, *graph.value_info, *graph.initializer]
    ranks: dict[str, str] = {}
    pattern = re.compile(r"__(\d+)")

    def rank(m: re.Match[str]) -> str:
        return "__" + ranks.setdefault(m.group(1), str(len(ranks) + 1))

    for node in graph.node:
        node.name = pattern.sub(rank, node.name)
        node.input[:] = [pattern.sub(rank, n) for n in node.input]
        node.output[:] = [pattern.sub(rank, n) for n in node.output]
    for v in named:
        v.name = pattern.sub(rank, v.name)
    for v in (*graph.input, *graph.output, *graph.value_info):
        for dim in v.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(rank, dim.dim_param)


def keras2onnx(model: Any, input_shape: tuple[int, ...], *, opset: int = ONNX_OPSET) -> bytes:
    """Convert a tf_keras model to ONNX with a dynamic batch axis (explicit input signature)."""
    import tf2onnx

    t = tf()
    spec = (t.TensorSpec((None, *input_shape), t.float32, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as e:
        interrupts.check()
        raise ExportError(f"ONNX conversion (tf2onnx.from_keras) failed: {str(e).strip().splitlines()[0]}") from None
    interrupts.check()  # tf2onnx's bare except: clauses swallow a Ctrl-C raised inside them
    canonical_node_names(proto)
    return proto.SerializeToString()


def tflite2onnx(tflite: bytes, *, opset: int = ONNX_OPSET) -> bytes:
    """Convert a TFLite model to ONNX; an int8 TFLite model becomes a QDQ model with int8 weights.

    The int8 weights and the scales/zero points (learned by QAT, or calibrated) are carried
    over as INT8 initializers feeding DequantizeLinear, so the file stays int8-sized. The
    input is renamed ``input`` (as :func:`keras2onnx` names it) and a fixed batch dimension
    is made symbolic when the graph then still runs at batch 2 in ONNX Runtime.
    """
    import tf2onnx

    tf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.tflite")
        with open(path, "wb") as f:
            f.write(tflite)
        try:
            with warnings.catch_warnings():  # tf2onnx still opens the file with the deprecated tf.lite.Interpreter
                warnings.simplefilter("ignore", UserWarning)
                proto, _ = tf2onnx.convert.from_tflite(path, opset=opset)
        except Exception as e:
            interrupts.check()
            raise ExportError(
                f"ONNX conversion (tf2onnx.from_tflite) failed: {str(e).strip().splitlines()[0]}") from None
    interrupts.check()
    _rename_input(proto, INPUT_NAME)
    canonical_node_names(proto)
    return _with_symbolic_batch(proto)


def _rename_input(proto: Any, name: str) -> None:
    graph = proto.graph
    if len(graph.input) != 1 or graph.input[0].name == name:
        return
    old = graph.input[0].name
    if any(v.name == name for v in (*graph.value_info, *graph.output, *graph.initializer)):
        return
    graph.input[0].name = name
    for node in graph.node:
        for i, x in enumerate(node.input):
            if x == old:
                node.input[i] = name


def _with_symbolic_batch(proto: Any) -> bytes:
    """Serialized ``proto``, with a fixed batch of 1 made symbolic when the result provably still works.

    A TFLite model converted with batch 1 also bakes that 1 into Reshape shapes; those become 0
    ("copy the input's dimension"). The rewrite is kept only if a batch of 2 gives the same
    outputs as two batch-1 runs of the original; otherwise the model keeps its fixed batch.
    """
    import onnxruntime as ort
    from onnx import numpy_helper

    data = proto.SerializeToString()
    fixed = [v for v in (*proto.graph.input, *proto.graph.output)
             if v.type.tensor_type.shape.dim and v.type.tensor_type.shape.dim[0].HasField("dim_value")]
    if not fixed or any(v.type.tensor_type.shape.dim[0].dim_value != 1 for v in fixed):
        return data
    for v in fixed:
        v.type.tensor_type.shape.dim[0].dim_param = "batch"  # clears dim_value (a oneof)
    del proto.graph.value_info[:]  # inferred shapes carry the old batch
    inits = {i.name: i for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]])
            if shape.size and shape[0] == 1:
                zeroed = np.concatenate([[0], shape[1:]]).astype(shape.dtype)
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(zeroed, node.input[1]))
    candidate = proto.SerializeToString()
    try:
        new, old = (ort.InferenceSession(m, providers=["CPUExecutionProvider"]) for m in (candidate, data))
        inp = old.get_inputs()[0]
        elem = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}[inp.type]
        x = (np.random.default_rng(0).random((2, *inp.shape[1:])) * 100).astype(elem)
        got = new.run(None, {inp.name: x})[0]
        want = np.concatenate([old.run(None, {inp.name: x[i:i + 1]})[0] for i in range(2)])
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-5):
            raise ValueError("batch-2 outputs differ from two batch-1 runs")
    except Exception as e:  # keep the fixed batch: correctness first
        log.info("keeping the fixed batch of the converted model: %s", str(e).splitlines()[0] if str(e) else e)
        return data
    return candidate

SPARSE_MIN_SPARSITY = 0.5
"""Below this weight sparsity TFLite's sparse encoding (indices + values) is not worth trying."""


def has_int8_weights(tflite: bytes) -> bool:
    """Whether a TFLite file stores int8 constant tensors (weights), read from the file itself.

    Its sparse-encoded form does not run on LiteRT's default (XNNPACK) delegate. Measured with
    ai-edge-litert 2.3: float weights (fp32, float16) load and match the dense file exactly; int8
    weights (full int8, dynamic range, QAT) fail with "TfLiteXNNPackDelegate failed to prepare"."""
    model = parse_tflite(tflite)
    return any(t.dtype == "int8" and model.buffer_bytes(t.buffer) for g in model.subgraphs for t in g.tensors)


def litert_problem(tflite: bytes) -> str | None:
    """None when LiteRT (default delegates) loads ``tflite`` and runs one batch-1 inference; else why not."""
    from edgekit.runtime.sessions import LiteRTSession

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.tflite")
        with open(path, "wb") as f:
            f.write(tflite)
        try:
            with quiet_native_output():
                sess = LiteRTSession(path, threads=1)
            shape = sess.interp.get_input_details()[0]["shape"]
            sess.predict(np.zeros((1, *shape[1:]), np.float32))
        except Exception as e:
            return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


def keras2tflite_encoded(model: Any, sparsity: float, *, quantization: TFLiteQuant = "none",
                         representative: np.ndarray | None = None, int8_io: bool = False,
                         per_channel: bool = True, dense: bytes | None = None) -> tuple[bytes, dict[str, Any]]:
    """:func:`keras2tflite`, sparse-encoded when that is worth it; returns (bytes, metrics about the choice).
    ``dense``: the file already converted by the caller (an int8 file with a float head, say), instead of
    :func:`keras2tflite`'s.

    Sparse encoding is used when the weights are at least ``SPARSE_MIN_SPARSITY`` zero and not int8
    (:func:`has_int8_weights`: LiteRT cannot run those sparse-encoded), the file gets smaller,
    and LiteRT really loads and runs it. ``metrics["sparse_encoding"]`` records the outcome and
    ``metrics["sparse_encoding_reason"]`` why, with the dense size for comparison.
    """
    if dense is None:
        dense = keras2tflite(model, quantization=quantization, representative=representative, int8_io=int8_io,
                             per_channel=per_channel)
    metrics: dict[str, Any] = {"sparse_encoding": False}
    if sparsity < SPARSE_MIN_SPARSITY:
        metrics["sparse_encoding_reason"] = f"weight sparsity {sparsity:.2f} < {SPARSE_MIN_SPARSITY}"
        return dense, metrics
    if has_int8_weights(dense):
        metrics["sparse_encoding_reason"] = (f"{quantization} weights: LiteRT's XNNPACK delegate cannot prepare "
                                             "sparse-encoded int8 tensors")
        return dense, metrics
    sparse = keras2tflite(model, quantization=quantization, representative=representative, int8_io=int8_io, sparse=True)
    metrics["dense_bytes"] = len(dense)
    if len(sparse) >= len(dense):
        metrics["sparse_encoding_reason"] = f"sparse file not smaller ({len(sparse)} ≥ {len(dense)} bytes)"
        return dense, metrics
    problem = litert_problem(sparse)
    if problem:
        metrics["sparse_encoding_reason"] = f"LiteRT cannot run the sparse file: {problem}"
        return dense, metrics
    metrics.update(sparse_encoding=True, sparse_encoding_reason=f"{len(dense)} → {len(sparse)} bytes")
    return sparse, metrics
