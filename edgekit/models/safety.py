"""Is a Keras model file safe to load? Read its configuration without deserialising anything.

A Keras file runs code when it is loaded if its configuration names a ``Lambda``
layer (marshalled Python bytecode), a ``TFOpLambda`` (any TensorFlow function,
``tf.io.write_file`` included), or a class that is not Keras's own (resolved by
name or module). This module reads the configuration of every form tf_keras
accepts — ``.keras`` zips (tf_keras and Keras 3), ``.h5`` files (including the
Keras 2.2 form whose Sequential config is a bare list of layers) and SavedModel
folders (``keras_metadata.pb``) — and walks *every* serialised object in it, in
whatever nesting (nested models, wrappers, initializers, regularizers …). A class
is accepted only if it is on the allow-lists below; anything else is refused
unless the user passes ``--trust-model``.

A SavedModel folder is refused without ``--trust-model`` whatever its metadata says:
tf_keras revives a layer whose configuration does not build its declared class (a
custom layer renamed ``Dense``) from the TensorFlow functions traced into the
folder, and those can hold any operation (``tf.io.write_file`` included). What the
metadata names is not what the loader runs, so no reading of it can vouch for the
folder. ``.keras`` and ``.h5`` files hold no functions: tf_keras builds every layer
from its configuration, and one that does not fit its class fails to load.

Nothing here imports TensorFlow or Keras: the check runs before either is loaded.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgekit.errors import ModelError

SourceFormat = Literal["tf_keras-h5", "tf_keras-keras", "savedmodel", "keras3"]
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_CONFIG_BYTES = 64 << 20
"""Largest model configuration read (a zip member or an h5 attribute); more is refused, not read."""
MAX_DEPTH = 200
"""Deepest nesting of a configuration walked; deeper is refused (no legitimate model nests this far)."""

CONTAINERS: frozenset[str] = frozenset({"Sequential", "Functional", "Model"})

ALLOWED_LAYERS: frozenset[str] = CONTAINERS | frozenset(
    {
        "InputLayer",
        # convolutions and dense
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "Dense", "EinsumDense",
        "Embedding",
        # normalisation, regularisation, activations
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "ActivityRegularization",
        "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Softmax",
        # pooling and reshaping
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
        "Flatten", "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
        "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
        # merging
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
        # preprocessing and augmentation
        "Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
        "RandomTranslation", "RandomContrast", "RandomCrop", "RandomBrightness",
        # recurrent layers and wrappers
        "SimpleRNN", "LSTM", "GRU", "ConvLSTM2D", "TimeDistributed", "Bidirectional",
    }
)
"""Keras's own layer classes that carry no code: their configuration is numbers, names and shapes."""

ALLOWED_OBJECTS: frozenset[str] = frozenset(
    {
        # initializers
        "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "Zeros", "Ones",
        "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal", "Identity",
        # regularizers and constraints
        "L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint",
        # dtype policies and Keras 3's markers for tensors and tuples in a functional graph
        "DTypePolicy", "FloatDTypePolicy", "Policy", "__keras_tensor__", "__tuple__",
        # shape and signature records of a SavedModel's keras_metadata.pb
        "InputSpec", "TensorShape", "TypeSpec",
    }
)
"""Keras's own non-layer objects that may appear inside a layer's configuration."""

CODE_CLASSES: frozenset[str] = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})
"""Built-in classes that *are* code: a Lambda's marshalled function, a TFOpLambda's TensorFlow call."""

KERAS_MODULES = ("keras", "tf_keras")
SKIPPED_KEYS = frozenset({"compile_config"})
"""Top-level keys tf_keras ignores when loading with ``compile=False`` (optimizer, loss, metrics)."""


@dataclass(frozen=True)
class Finding:
    """One serialised object of a model configuration: its class, its name, and whether it is allowed."""

    class_name: str
    name: str
    allowed: bool
    why: str = ""


def detect_format(path: Path) -> SourceFormat:
    """Which kind of Keras model ``path`` holds (by content, not by suffix)."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise ModelError(f"{path}: not a model (a folder without saved_model.pb)")
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith(ZIP_MAGIC):
        try:
            meta = json.loads(read_zip_member(path, "metadata.json"))
        except (KeyError, zipfile.BadZipFile, ValueError) as exc:
            raise ModelError(f"{path}: not a Keras .keras archive ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(meta, dict):
            raise ModelError(f"{path}: not a Keras .keras archive (metadata.json is not an object)")
        return "keras3" if str(meta.get("keras_version", "")).startswith("3") else "tf_keras-keras"
    if magic == HDF5_MAGIC:
        return "tf_keras-h5"
    raise ModelError(f"{path}: not a Keras model (expected a .h5 or .keras file or a SavedModel folder)")


def read_zip_member(path: Path, member: str, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """One member of a zip archive, refusing (not reading) more than ``max_bytes`` once decompressed."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        if info.file_size > max_bytes:
            raise ModelError(f"{path}: {member} is {info.file_size:,} bytes uncompressed (more than {max_bytes:,})")
        with archive.open(info) as handle:
            data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ModelError(f"{path}: {member} decompresses to more than {max_bytes:,} bytes")
    return data


def _object_name(obj: dict[str, Any]) -> str:
    config = obj.get("config")
    name = obj.get("name") or (config.get("name") if isinstance(config, dict) else None)
    return str(name)[:80] if name else "?"


def _check_object(obj: dict[str, Any]) -> Finding:
    cls = str(obj.get("class_name"))[:80]
    name = _object_name(obj)
    if cls in CODE_CLASSES:
        return Finding(cls, name, False, "runs code stored in the file")
    if cls not in ALLOWED_LAYERS and cls not in ALLOWED_OBJECTS:
        return Finding(cls, name, False, "not one of Keras's built-in classes")
    module = obj.get("module")
    if module is not None and not (isinstance(module, str) and module.split(".")[0] in KERAS_MODULES):
        return Finding(cls, name, False, f"names module {str(module)[:60]!r}")
    registered = obj.get("registered_name")
    if registered not in (None, cls):
        return Finding(cls, name, False, f"registered as {str(registered)[:60]!r}")
    return Finding(cls, name, True)


def walk_config(config: Any) -> Iterator[Finding]:
    """Every serialised object (a mapping with a ``class_name``) anywhere in ``config``, judged.

    The walk is shape-agnostic: a Sequential whose ``config`` is a bare list, a functional
    ``layers`` list, a wrapper's ``layer``, nested models and initializers are all found.
    """
    stack: list[tuple[Any, int]] = [(config, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelError(f"model configuration nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            if isinstance(value.get("class_name"), str):
                finding = _check_object(value)
                yield finding
                if finding.class_name in CODE_CLASSES:
                    continue  # refused as a whole; its inner config is the code itself
            elif "function_type" in value:  # a Lambda's config, whatever wraps it
                yield Finding("Lambda", _object_name(value), False, "runs code stored in the file")
                continue
            children = [v for k, v in value.items() if not (depth == 0 and k in SKIPPED_KEYS)]
        elif isinstance(value, list):
            children = value
        else:
            continue
        stack.extend((v, depth + 1) for v in reversed(children))  # reversed: visited in file order


def _h5_config(path: Path) -> Any:
    import h5py

    with h5py.File(path, "r") as handle:
        raw = handle.attrs.get("model_config")
    if raw is None:
        raise ModelError(f"{path}: an HDF5 file without a model config (weights only?)")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    if len(text) > MAX_CONFIG_BYTES:
        raise ModelError(f"{path}: its model config is larger than {MAX_CONFIG_BYTES:,} bytes")
    return json.loads(text)


def _savedmodel_configs(path: Path) -> list[Any]:
    """The metadata of every Keras object of a SavedModel, parsed from keras_metadata.pb without TensorFlow."""
    metadata_file = path / "keras_metadata.pb"
    if not metadata_file.is_file():
        raise ModelError(f"{path}: a SavedModel without Keras metadata (not saved by Keras)")
    if metadata_file.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelError(f"{path}: keras_metadata.pb is larger than {MAX_CONFIG_BYTES:,} bytes")
    return [json.loads(text or "{}") for text in _metadata_strings(metadata_file.read_bytes())]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message: enough to read SavedMetadata."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _metadata_strings(blob: bytes) -> list[str]:
    """``SavedMetadata.nodes[*].metadata`` (nodes = field 1, metadata = field 5 of SavedObject)."""
    out = []
    for number, wire, node in _fields(blob):
        if number == 1 and wire == 2:
            for field_number, field_wire, value in _fields(node):
                if field_number == 5 and field_wire == 2:
                    out.append(value.decode("utf-8"))
    return out


def read_findings(path: Path, fmt: SourceFormat) -> list[Finding]:
    """Every serialised object in the model file's configuration, read without deserialising anything."""
    try:
        if fmt in ("tf_keras-keras", "keras3"):
            configs = [json.loads(read_zip_member(path, "config.json"))]
        elif fmt == "tf_keras-h5":
            configs = [_h5_config(path)]
        else:
            configs = _savedmodel_configs(path)
    except ModelError:
        raise
    except (OSError, KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, RecursionError) as exc:
        raise ModelError(f"{path}: cannot read the model config ({type(exc).__name__}: {str(exc)[:120]})") from None
    findings = [finding for config in configs for finding in walk_config(config)]
    if not findings:
        raise ModelError(f"{path}: the model config names no layers")
    return findings


def check_safe(findings: list[Finding], path: Path, trust: bool) -> list[str]:
    """Refuse code and unknown classes unless ``trust``; returns notes for the report."""
    refused = [f for f in findings if not f.allowed]
    if not refused:
        return []
    described = [f"'{f.name}' ({f.class_name}: {f.why})" for f in refused]
    if trust:
        return [f"loaded code from the file (--trust-model): {', '.join(dict.fromkeys(described))}"]
    first = refused[0]
    if first.class_name == "Lambda":
        what = f"Lambda layer '{first.name}'"
    elif first.class_name in CODE_CLASSES:
        what = f"{first.class_name} layer '{first.name}' (it calls a TensorFlow function named in the file)"
    elif first.why.startswith("not"):
        what = f"custom layer '{first.name}' ({first.class_name})"
    else:
        what = f"layer '{first.name}' ({first.class_name}, {first.why})"
    raise ModelError(f"{path}: contains {what}; pass --trust-model to load code from the file")


SAVEDMODEL_RUNS_CODE = ("tf_keras rebuilds its layers from the TensorFlow functions saved in it, "
                        "which can run any operation")


def check_savedmodel(path: Path, trust: bool) -> list[str]:
    """A SavedModel folder loads only with ``trust`` (see the module docstring); returns the report's note."""
    if not trust:
        raise ModelError(f"{path}: a SavedModel folder: {SAVEDMODEL_RUNS_CODE}; pass --trust-model to load it "
                         "(or save the model as .keras or .h5)")
    return [f"loaded a SavedModel folder (--trust-model): {SAVEDMODEL_RUNS_CODE}"]


def check_model_file(path: str | Path, trust: bool) -> tuple[SourceFormat, list[str]]:
    """Detect the format of a Keras model file and run the safety check; returns (format, notes)."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such model file or folder")
    fmt = detect_format(p)
    notes = check_safe(read_findings(p, fmt), p, trust)
    if fmt == "savedmodel":
        notes += check_savedmodel(p, trust)
    return fmt, notes
