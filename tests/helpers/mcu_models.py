"""Tiny *untrained* models for the metadata and microcontroller tests (fast tier: nothing is trained).

``mcu_models(folder)`` builds a small seeded tf_keras CNN, converts it with edgekit's own
``keras2tflite`` (fp32 and full-integer int8) and embeds edgekit metadata (10 labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class McuModels:
    folder: Path
    fp32: Path
    int8: Path
    int8_raw: Path  # as converted, no metadata
    x: np.ndarray  # seeded random images in [0, 1], (N, 28, 28, 1)
    labels: tuple[str, ...] = LABELS


def build_tiny_cnn(seed: int = 0, filters: int = 8, dense: int = 0):  # noqa: ANN201
    """A seeded, untrained Conv-Pool-DepthwiseConv-Dense tf_keras model for 28×28×1 inputs."""
    from edgekit._tf import keras, tf

    tf().random.set_seed(seed)
    k = keras()
    layers = [
        k.layers.Input((28, 28, 1), name="input"),
        k.layers.Conv2D(filters, 3, activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.DepthwiseConv2D(3, activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.Flatten(),
    ]
    if dense:
        layers.append(k.layers.Dense(dense, activation="relu"))
    layers.append(k.layers.Dense(len(LABELS), activation="softmax"))
    return k.Sequential(layers)


def build_mcu_models(folder: Path, seed: int = 0) -> McuModels:
    """Convert the tiny CNN to fp32 and int8 TFLite with edgekit metadata embedded."""
    from edgekit.artifact import ModelMeta
    from edgekit.export.convert import keras2tflite
    from edgekit.export.metadata import embed_metadata

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    model = build_tiny_cnn(seed)
    paths = {"fp32": folder / "mcu_fp32.tflite", "int8": folder / "mcu_int8.tflite"}
    paths["fp32"].write_bytes(keras2tflite(model))
    int8 = keras2tflite(model, quantization="int8", representative=x[:32])
    paths["int8"].write_bytes(int8)
    raw = folder / "mcu_int8_raw.tflite"
    raw.write_bytes(int8)
    meta = ModelMeta(labels=LABELS, input_shape=(28, 28, 1), dataset="digits")
    for i, p in enumerate(paths.values()):
        embed_metadata(p, meta, artifact_id=f"mcu{i:05d}")
    return McuModels(folder, paths["fp32"], paths["int8"], raw, x)


_CACHE: dict[str, McuModels] = {}


def mcu_models(base: Path) -> McuModels:
    """The models, built once per test process under ``base`` (share it via a session fixture)."""
    if "models" not in _CACHE:
        _CACHE["models"] = build_mcu_models(Path(base) / "mcu-models")
    return _CACHE["models"]


def standard_only_copy(src: Path, dst: Path) -> Path:
    """A copy of ``src`` whose only metadata is the standard TFLite form (no ``edgekit_metadata`` JSON entry),
    as a foreign tool (e.g. TFLite Support's MetadataPopulator) would leave it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    from edgekit.export.metadata import TFLITE_NAME
    from edgekit.export.tflite_metadata import pack_associated_files, packed_files

    data = src.read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    model.metadata = [m for m in model.metadata if m.name != TFLITE_NAME.encode()]
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(pack_associated_files(bytes(builder.Output()), packed_files(data)))
    return dst
