"""Tiny real models for tests: a small CNN trained for one epoch on the bundled digits set.

``build_models(folder)`` trains once and writes fp32 and int8 TFLite and ONNX files
with edgekit metadata embedded; call it from a session-scoped fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TinyModels:
    """Paths of the exported tiny models and the data they were made from."""

    folder: Path
    keras: Path
    tflite: Path
    onnx: Path
    tflite_int8: Path
    onnx_int8: Path
    labels: tuple[str, ...]
    x_test: np.ndarray
    y_test: np.ndarray
    x_calib: np.ndarray


def _meta(labels: tuple[str, ...]):  # noqa: ANN202
    from edgekit.artifact import ModelMeta

    return ModelMeta(labels=labels, input_shape=(28, 28, 1), dataset="digits")


def train_tiny_cnn(seed: int = 0):  # noqa: ANN201
    """A small Conv-DepthwiseConv-Dense network trained one epoch on ``digits``."""
    from edgekit._tf import keras, tf
    from edgekit.data.datasets import load_dataset

    tf().random.set_seed(seed)
    k = keras()
    ds = load_dataset("digits", seed=seed)
    model = k.Sequential([
        k.layers.Input((28, 28, 1), name="input"),
        k.layers.Conv2D(8, 3, activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.DepthwiseConv2D(3, activation="relu"),
        k.layers.Conv2D(16, 1, activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.Flatten(),
        k.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=3, batch_size=32, verbose=0)
    return model, ds


def build_models(folder: Path) -> TinyModels:
    """Train the tiny CNN and export fp32/int8 TFLite and ONNX files (metadata embedded) into ``folder``."""
    from edgekit._tf import tf
    from edgekit.export.metadata import embed_metadata

    folder.mkdir(parents=True, exist_ok=True)
    t = tf()
    model, ds = train_tiny_cnn()
    meta = _meta(ds.labels)
    keras_path = folder / "tiny.keras"
    model.save(keras_path)

    conv = t.lite.TFLiteConverter.from_keras_model(model)
    tflite = folder / "tiny.tflite"
    tflite.write_bytes(conv.convert())

    calib = ds.x_train[:64]
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tflite_int8 = folder / "tiny_int8.tflite"
    tflite_int8.write_bytes(conv.convert())

    import tf2onnx

    onnx_path = folder / "tiny.onnx"
    spec = [t.TensorSpec([None, 28, 28, 1], t.float32, name="input")]
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(onnx_path))
    onnx_int8 = folder / "tiny_int8.onnx"
    _quantize_onnx(onnx_path, onnx_int8, calib)

    import shutil

    shutil.copyfile(tflite, folder / "tiny_raw.tflite")  # as converted, before metadata
    shutil.copyfile(onnx_path, folder / "tiny_raw.onnx")
    for i, p in enumerate((tflite, tflite_int8, onnx_path, onnx_int8)):
        embed_metadata(p, meta, artifact_id=f"test{i:08d}")
    return TinyModels(folder, keras_path, tflite, onnx_path, tflite_int8, onnx_int8, ds.labels,
                      ds.x_test, ds.y_test, calib)


def _quantize_onnx(src: Path, dst: Path, calib: np.ndarray) -> None:
    """Static QDQ S8S8 per-channel quantization with ONNX Runtime."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):  # noqa: ANN202
            return next(self._it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=True)


_CACHE: dict[str, TinyModels] = {}


def tiny_models(base: Path) -> TinyModels:
    """The tiny models, built once per test process under ``base`` (share it via a session fixture)."""
    if "models" not in _CACHE:
        _CACHE["models"] = build_models(Path(base) / "tiny-models")
    return _CACHE["models"]


def assert_runs_without_tensorflow(code: str) -> None:
    """Run ``code`` in a fresh interpreter and fail if it imported TensorFlow."""
    import subprocess
    import sys

    check = f"{code}\nimport sys\nassert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=Path(__file__).parents[2])


def build_compact_cnn(input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10, seed: int = 0):  # noqa: ANN201
    """A compact MobileNet-like tf_keras model: Conv-BN-ReLU, a depthwise-separable block
    (DepthwiseConv2D + BN + 1×1 Conv2D + BN), a SeparableConv2D, global average pooling and a Dense classifier.

    Few weights and no over-parameterized Dense layer: the kind of model blind compression ruins."""
    from edgekit._tf import keras, tf

    tf().random.set_seed(seed)
    k = keras()
    inp = k.layers.Input(input_shape, name="input")
    x = k.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = k.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = k.layers.ReLU(name="stem_relu")(x)
    x = k.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw1")(x)
    x = k.layers.BatchNormalization(momentum=0.9, name="dw1_bn")(x)
    x = k.layers.ReLU(name="dw1_relu")(x)
    x = k.layers.Conv2D(32, 1, use_bias=False, name="pw1")(x)
    x = k.layers.BatchNormalization(momentum=0.9, name="pw1_bn")(x)
    x = k.layers.ReLU(name="pw1_relu")(x)
    x = k.layers.SeparableConv2D(64, 3, strides=2, padding="same", use_bias=False, name="sep2")(x)
    x = k.layers.BatchNormalization(momentum=0.9, name="sep2_bn")(x)
    x = k.layers.ReLU(name="sep2_relu")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    out = k.layers.Dense(classes, activation="softmax", name="classifier")(x)
    return k.Model(inp, out, name="compact_cnn")


def train_compact_cnn(dataset: str = "fashion-mnist", train_limit: int = 3000, epochs: int = 6, seed: int = 0):  # noqa: ANN201
    """The compact model trained (seeded) on a slice of ``dataset``; returns (model, Dataset)."""
    from edgekit.data.datasets import load_dataset
    from edgekit.train.trainer import FitSettings, fit, seed_everything

    seed_everything(seed)
    ds = load_dataset(dataset, train_limit=train_limit, test_limit=1000, seed=seed, val_fraction=0.2)
    model = build_compact_cnn(ds.input_shape, ds.num_classes, seed)
    fit(model, ds.x_train, ds.y_train, FitSettings(epochs, 32, 3e-3), label="compact model")
    return model, ds
