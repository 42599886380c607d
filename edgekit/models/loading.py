"""Safe loading of users' models: tf_keras .h5/.keras/SavedModel and Keras 3 .keras files.

Safety first: :mod:`edgekit.models.safety` reads the model's configuration from
the file *before* anything is deserialised, and anything but Keras's own built-in
classes (Lambda layers, TFOpLambda, custom classes) is refused unless
``trust=True`` (``--trust-model``), and so is any SavedModel folder (its layers can
be revived from the TensorFlow functions saved in it).

Keras 3 ``.keras`` files (a zip of config.json + model.weights.h5) cannot be
read by tf_keras, which TFMOT needs; they are rebuilt layer by layer in
tf_keras from config.json (standard layers only, see :data:`KERAS3_LAYERS`),
their weights are copied from the h5 file, and the result is compared with
Keras 3's own output in a subprocess (see :func:`compare_with_keras3`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit._tf import keras
from edgekit.errors import ModelError
from edgekit.models.safety import SourceFormat, check_model_file, read_zip_member

log = logging.getLogger(__name__)

KERAS3_LAYERS: frozenset[str] = frozenset(
    {
        "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "MaxPooling2D",
        "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Dropout",
        "BatchNormalization", "Activation", "ReLU", "Softmax", "Rescaling", "Reshape", "ZeroPadding2D",
        "Add", "Concatenate",
    }
)
"""Keras 3 layer classes rebuilt in tf_keras (their tf_keras namesakes take the same settings)."""

KERAS3_VERIFY_TOLERANCE = 1e-4
"""Largest |difference| allowed between the rebuilt tf_keras model and Keras 3 (outputs in [0, 1] or logits)."""


@dataclass(frozen=True)
class LoadedModel:
    """A user's model in tf_keras, and what edgekit inferred about it."""

    model: Any
    input_shape: tuple[int, ...]  # without the batch axis
    num_classes: int
    output: Literal["softmax", "logits"]
    source_format: SourceFormat
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- Keras 3 -> tf_keras


def keras3_path_name(class_name: str) -> str:
    """Keras 3's snake_case of a class name, which names its weight groups (keras.src.utils.naming)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _plain(value: Any) -> Any:
    """A Keras 3 serialized object ({module, class_name, config, registered_name}) in tf_keras form."""
    if isinstance(value, dict) and "class_name" in value and "module" in value:
        return {"class_name": value["class_name"], "config": value.get("config", {})}
    return value


_DROP_ALWAYS = ("kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer",
                "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")
"""Initializers do not matter for a model whose weights are loaded, and Keras 3 adds arguments tf_keras lacks."""


_UNKNOWN_ARGUMENT = re.compile(r"(?:unexpected keyword argument|Keyword argument not understood:?)\W*(\w+)")


def _tf_keras_layer(entry: dict[str, Any], notes: list[str]) -> Any:
    """Build the tf_keras namesake of one Keras 3 layer config."""
    k = keras()
    cls = getattr(k.layers, entry["class_name"])
    config = {key: _plain(value) for key, value in dict(entry["config"]).items() if key not in _DROP_ALWAYS}
    dtype = entry["config"].get("dtype")
    if isinstance(dtype, dict):
        config["dtype"] = dtype.get("config", {}).get("name", "float32")
    for _ in range(len(config) + 1):
        try:
            return cls.from_config(config)
        except (TypeError, ValueError) as exc:
            reason = str(exc).split("Exception encountered:")[-1]
            match = _UNKNOWN_ARGUMENT.search(reason)
            unknown = [match.group(1)] if match and match.group(1) in config and match.group(1) != "name" else []
            if not unknown:
                raise ModelError(f"layer '{config.get('name')}' ({entry['class_name']}): "
                                 f"tf_keras rejects its config: {exc}") from exc
            value = config.pop(unknown[0])
            if value not in (None, False, 0, {}, [], "float32"):
                notes.append(f"dropped Keras 3 setting {unknown[0]}={value!r} of layer '{config.get('name')}'")
    raise ModelError(f"layer '{config.get('name')}' ({entry['class_name']}): tf_keras rejects its config")


def _input(entry: dict[str, Any]) -> Any:
    config = entry["config"]
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    dtype = config.get("dtype") or "float32"
    if isinstance(dtype, dict):  # a DTypePolicy
        dtype = dtype.get("config", {}).get("name", "float32")
    return keras().Input(shape=tuple(shape[1:]), name=config.get("name"), dtype=dtype)


def _replace_tensors(value: Any, tensors: dict[tuple[str, int, int], Any]) -> Any:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return tensors[(history[0], int(history[1]), int(history[2]))]
    if isinstance(value, list):
        return [_replace_tensors(v, tensors) for v in value]
    if isinstance(value, dict):
        return {key: _replace_tensors(v, tensors) for key, v in value.items()}
    return value


def _io_names(spec: Any) -> list[tuple[str, int, int]]:
    """Keras 3 writes input_layers/output_layers as one [name, node, tensor] or a list of them."""
    if spec and isinstance(spec[0], str):
        spec = [spec]
    return [(str(s[0]), int(s[1]), int(s[2])) for s in spec]


def _build_keras3(config: dict[str, Any], notes: list[str]) -> tuple[Any, list[tuple[dict[str, Any], Any]]]:
    """A tf_keras model with the architecture of a Keras 3 config, and (entry, layer) pairs in saved order."""
    k = keras()
    kind, body = config.get("class_name"), config.get("config", {})
    entries = body.get("layers", [])
    pairs: list[tuple[dict[str, Any], Any]] = []
    if kind == "Sequential":
        layers = []
        for entry in entries:
            if entry["class_name"] == "InputLayer":
                layers.append(_input(entry))
                continue
            layer = _tf_keras_layer(entry, notes)
            pairs.append((entry, layer))
            layers.append(layer)
        if not layers or entries[0]["class_name"] != "InputLayer":
            shape = body.get("build_input_shape") or config.get("build_config", {}).get("input_shape")
            if not shape:
                raise ModelError("Keras 3 Sequential model was saved unbuilt (no input shape)")
            layers.insert(0, k.Input(shape=tuple(shape[1:])))
        return k.Sequential(layers, name=body.get("name")), pairs
    tensors: dict[tuple[str, int, int], Any] = {}
    for entry in entries:
        name = entry.get("name") or entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            tensors[(name, 0, 0)] = _input(entry)
            continue
        layer = _tf_keras_layer(entry, notes)
        pairs.append((entry, layer))
        for node_index, node in enumerate(entry.get("inbound_nodes", [])):
            args = _replace_tensors(node.get("args", []), tensors)
            kwargs = _replace_tensors(node.get("kwargs", {}), tensors)
            out = layer(*args, **kwargs)
            for tensor_index, tensor in enumerate(out if isinstance(out, (list, tuple)) else [out]):
                tensors[(name, node_index, tensor_index)] = tensor
    inputs = [tensors[key] for key in _io_names(body["input_layers"])]
    outputs = [tensors[key] for key in _io_names(body["output_layers"])]
    model = k.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                    name=body.get("name"))
    return model, pairs


def _copy_keras3_weights(blob: bytes, pairs: list[tuple[dict[str, Any], Any]], path: Path) -> None:
    """Copy weights from Keras 3's model.weights.h5 (groups named by class, counted in saved order)."""
    import h5py

    used: dict[str, int] = {}
    with h5py.File(io.BytesIO(blob), "r") as handle:
        layers = handle["layers"]
        for entry, layer in pairs:
            base = keras3_path_name(entry["class_name"])
            used[base] = used.get(base, -1) + 1
            group_name = base if used[base] == 0 else f"{base}_{used[base]}"
            if not layer.weights:
                continue
            if group_name not in layers or "vars" not in layers[group_name]:
                raise ModelError(f"{path}: no weights for layer '{layer.name}' (expected group layers/{group_name})")
            stored = layers[group_name]["vars"]
            arrays = [np.asarray(stored[str(i)]) for i in range(len(stored))]
            expected = [tuple(w.shape) for w in layer.weights]
            if [a.shape for a in arrays] != expected:
                raise ModelError(
                    f"{path}: weights of layer '{layer.name}' have shapes {[a.shape for a in arrays]}, "
                    f"expected {expected}"
                )
            layer.set_weights(arrays)


def _layer_name(entry: dict[str, Any]) -> str:
    config = entry.get("config")
    return str(entry.get("name") or (config.get("name") if isinstance(config, dict) else "") or "?")


MAX_WEIGHTS_BYTES = 2 << 30
"""Largest model.weights.h5 read from a Keras 3 archive (decompressed)."""


def _load_keras3(path: Path, notes: list[str]) -> Any:
    config = json.loads(read_zip_member(path, "config.json"))
    try:
        blob = read_zip_member(path, "model.weights.h5", MAX_WEIGHTS_BYTES)
    except KeyError as exc:
        raise ModelError(f"{path}: Keras 3 archive without model.weights.h5") from exc
    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise ModelError(f"{path}: Keras 3 model class {config.get('class_name')!r} cannot be rebuilt "
                         "(only Sequential and Functional)")
    unsupported = [
        f"{e['class_name']} ('{_layer_name(e)}')"
        for e in config.get("config", {}).get("layers", [])
        if e.get("class_name") not in KERAS3_LAYERS
    ]
    if unsupported:
        raise ModelError(f"{path}: Keras 3 layers the tf_keras conversion does not support: {', '.join(unsupported)}")
    model, pairs = _build_keras3(config, notes)
    _copy_keras3_weights(blob, pairs, path)
    notes.append(f"rebuilt from a Keras 3 file in tf_keras ({len(pairs)} layers, weights copied)")
    return model


_KERAS3_SCRIPT = """
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1], compile=False, safe_mode=True)
np.save(sys.argv[3], np.asarray(model.predict(np.load(sys.argv[2]), verbose=0)))
"""


def compare_with_keras3(path: str | Path, model: Any, *, samples: int = 4, seed: int = 0,
                        timeout_s: float = 180.0) -> float:
    """Max |difference| between ``model`` and Keras 3's own run of the file on random inputs.

    Keras 3 runs in a subprocess with ``TF_USE_LEGACY_KERAS=0`` (in this process
    ``keras`` may resolve to tf_keras). Raises ModelError if Keras 3 cannot run.
    """
    shape = tuple(int(d) for d in model.input_shape[1:])
    x = np.random.default_rng(seed).random((samples, *shape), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="edgekit-k3-") as tmp:
        x_file, y_file = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(x_file, x)
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        try:
            done = subprocess.run(
                [sys.executable, "-c", _KERAS3_SCRIPT, str(path), str(x_file), str(y_file)],
                env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"{path}: Keras 3 did not finish within {timeout_s:.0f} s") from exc
        if done.returncode != 0 or not y_file.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelError(f"{path}: Keras 3 could not run the file to check the conversion: {last}")
        expected = np.load(y_file)
    got = np.asarray(model.predict(x, verbose=0))
    return float(np.max(np.abs(got - expected)))


# --------------------------------------------------------------------------- public


def _output_kind(model: Any, notes: list[str]) -> Literal["softmax", "logits"]:
    """softmax if the model's last operation is a softmax, else logits."""
    layer = model.outputs[0]._keras_history.layer
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax"
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if activation == "softmax":
        return "softmax"
    if activation == "sigmoid":
        notes.append(f"output layer '{layer.name}' ends in sigmoid; its scores are ranked like logits")
    return "logits"


def describe(model: Any, source_format: SourceFormat, notes: list[str], path: Path) -> LoadedModel:
    """Infer input shape, classes and output activation of a loaded image classifier."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{path}: expected one image input and one class output, "
                         f"got {len(model.inputs)} inputs and {len(model.outputs)} outputs")
    in_shape, out_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(in_shape) != 4 or any(d is None for d in in_shape[1:]):
        raise ModelError(f"{path}: expected an input of shape (batch, height, width, channels) with known sizes, "
                         f"got {in_shape}")
    if len(out_shape) != 2 or out_shape[1] is None or out_shape[1] < 2:
        raise ModelError(f"{path}: expected an output of shape (batch, classes) with 2+ classes, got {out_shape}")
    output = _output_kind(model, notes)
    return LoadedModel(
        model=model,
        input_shape=tuple(int(d) for d in in_shape[1:]),
        num_classes=int(out_shape[1]),
        output=output,
        source_format=source_format,
        notes=notes,
    )


def load_user_model(path: str | Path, *, trust: bool = False, verify_keras3: bool = True) -> LoadedModel:
    """Load a user's Keras model into tf_keras, safely.

    Accepts tf_keras ``.h5``/``.keras`` files and SavedModel folders, and Keras 3
    ``.keras`` files (rebuilt in tf_keras; with ``verify_keras3`` the result is
    compared with Keras 3 itself and must agree within 1e-4). Lambda layers and
    custom classes, and SavedModel folders, are refused unless ``trust`` (``--trust-model``).
    Raises ModelError (one line, naming the file) for anything else.
    """
    path = Path(path)
    fmt, notes = check_model_file(path, trust)
    if fmt == "keras3":
        model = _load_keras3(path, notes)
    else:
        k = keras()
        try:
            if fmt == "tf_keras-keras":
                model = k.models.load_model(path, compile=False, safe_mode=not trust)
            else:
                model = k.models.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - tf_keras raises many types; the user needs one line
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ModelError(f"{path}: cannot load as {fmt} ({type(exc).__name__}: {first})") from exc
        if not hasattr(model, "inputs") or model.inputs is None:
            raise ModelError(f"{path}: loaded, but it is not a built Keras model")
    loaded = describe(model, fmt, notes, path)
    if fmt == "keras3" and verify_keras3:
        diff = compare_with_keras3(path, model)
        if not diff <= KERAS3_VERIFY_TOLERANCE:
            raise ModelError(f"{path}: the tf_keras rebuild disagrees with Keras 3 (max |diff| {diff:.3g})")
        notes.append(f"checked against Keras 3 on 4 random inputs: max |diff| {diff:.2g}")
    log.info("loaded %s (%s): input %s, %d classes, %s", path, fmt, loaded.input_shape, loaded.num_classes,
             loaded.output)
    return loaded
