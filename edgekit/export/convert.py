"""Model conversions, one small typed function per source → target pair.

Each returns the serialized model bytes; writing them (atomically) and
verifying them against the parent is the caller's job.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, Literal

import numpy as np

from edgekit._tf import tf
from edgekit.errors import ExportError

log = logging.getLogger(__name__)

ONNX_OPSET = 17
INPUT_NAME = "input"

TFLiteQuant = Literal["none", "int8", "float16", "dynamic"]


def keras2tflite(model: Any, *, quantization: TFLiteQuant = "none", representative: np.ndarray | None = None,
                 int8_io: bool = False) -> bytes:
    """Convert a tf_keras model to TFLite.

    ``int8``: full-integer post-training quantization calibrated on ``representative``
    (float model I/O unless ``int8_io``); ``float16``: float16 weights;
    ``dynamic``: int8 weights with float activations (dynamic range).
    A QAT model (TFMOT ``quantize_model``) converts with ``dynamic`` or ``int8`` and
    keeps the ranges it learned.
    """
    t = tf()
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    if quantization != "none":
        conv.optimizations = [t.lite.Optimize.DEFAULT]
    if quantization == "int8":
        if representative is None or len(representative) == 0:
            raise ExportError("int8 TFLite quantization needs a representative dataset")
        rep = representative.astype(np.float32)

        def gen() -> Any:
            for i in range(len(rep)):
                yield [rep[i : i + 1]]

        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            conv.inference_input_type = t.int8
            conv.inference_output_type = t.int8
    elif quantization == "float16":
        conv.target_spec.supported_types = [t.float16]
    try:
        return bytes(conv.convert())
    except Exception as e:  # the converter raises assorted ConverterError/ValueError types
        raise ExportError(f"TFLite conversion failed: {str(e).strip().splitlines()[0]}") from None


def keras2onnx(model: Any, input_shape: tuple[int, ...], *, opset: int = ONNX_OPSET) -> bytes:
    """Convert a tf_keras model to ONNX with a dynamic batch axis (explicit input signature)."""
    import tf2onnx

    t = tf()
    spec = (t.TensorSpec((None, *input_shape), t.float32, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as e:
        raise ExportError(f"ONNX conversion (tf2onnx.from_keras) failed: {str(e).strip().splitlines()[0]}") from None
    return proto.SerializeToString()


def tflite2onnx(tflite: bytes, *, opset: int = ONNX_OPSET) -> bytes:
    """Convert a TFLite model to ONNX; an int8 TFLite model becomes a QDQ model with int8 weights."""
    import tf2onnx

    tf()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.tflite")
        with open(path, "wb") as f:
            f.write(tflite)
        try:
            proto, _ = tf2onnx.convert.from_tflite(path, opset=opset)
        except Exception as e:
            raise ExportError(f"ONNX conversion (tf2onnx.from_tflite) failed: {str(e).strip().splitlines()[0]}") from None
    return proto.SerializeToString()
