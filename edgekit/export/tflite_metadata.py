"""Standard TFLite metadata (TFLite Support's ``ModelMetadata`` flatbuffer), written and read without tflite-support.

Android Studio's ML Model Binding, LiteRT's Task Library and TFLite Support's
``MetadataDisplayer`` read a model's labels and preprocessing from:

* a metadata entry named ``TFLITE_METADATA`` whose buffer holds a ``ModelMetadata``
  flatbuffer (file identifier ``M001``; schema ``metadata_schema.fbs`` of
  tensorflow/tflite-support), and
* the associated files it names (here ``labels.txt``), packed as a zip archive
  appended to the model file, the way tflite-support's ``MetadataPopulator`` does.

edgekit writes an image-classifier description: the input tensor is an image
(``ImageProperties``: RGB or GRAYSCALE) with ``NormalizationOptions`` mean/std on
raw 0..255 pixels, and the output tensor carries ``labels.txt`` as a
``TENSOR_AXIS_LABELS`` file. Field numbers below follow the schema (field ``i``
sits at vtable slot ``i``; a union takes two slots: its type, then its value).
Writing needs the pure-Python ``flatbuffers`` package; reading needs nothing
beyond :mod:`edgekit.export.tflite_reader`.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

from edgekit.artifact import ModelMeta
from edgekit.errors import ModelError
from edgekit.export.tflite_reader import Table, TFLiteModel, flatbuffer_root

METADATA_NAME = "TFLITE_METADATA"
"""The metadata entry name every TFLite Support reader looks for."""
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"
"""Every field edgekit writes exists since schema 1.0.0 (see the ``Added in`` notes of the schema)."""
LABEL_FILE = "labels.txt"
PIXEL_MAX = 255.0

# enums and union tags of metadata_schema.fbs
TENSOR_AXIS_LABELS = 2
COLOR_SPACES = {"rgb": 1, "grayscale": 2}
CONTENT_FEATURE, CONTENT_IMAGE = 1, 2
PROCESS_NORMALIZATION = 1


@dataclass(frozen=True)
class StandardMetadata:
    """What edgekit reads back from a ``ModelMetadata`` flatbuffer and its packed files."""

    name: str
    description: str
    min_parser_version: str
    mean: tuple[float, ...]  # NormalizationOptions on raw pixels: (pixel - mean) / std
    std: tuple[float, ...]
    color: str  # rgb | grayscale | "" when the input has no ImageProperties
    label_file: str  # the output's TENSOR_AXIS_LABELS file name, "" when none
    labels: tuple[str, ...]
    packed_files: tuple[str, ...]


# --------------------------------------------------------------------------- writing


def normalization_of(meta: ModelMeta) -> tuple[float, float]:
    """edgekit's ``(pixel * scale - mean) / std`` as the standard ``(pixel - mean') / std'``."""
    return meta.mean / meta.scale, meta.std / meta.scale


def build_model_metadata(meta: ModelMeta, *, name: str, description: str, version: str,
                         float_input: bool) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) of an image classifier described by ``meta``."""
    import flatbuffers

    mean, std = normalization_of(meta)
    channels = 3 if meta.color == "rgb" else 1
    b = flatbuffers.Builder(1024)

    def table(fields: list[tuple[int, str, int | float]]) -> int:
        """A table from (slot, kind, value): kind 'o' offset, 'b' byte, 'u' uint32."""
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in fields:
            if kind == "o":
                b.PrependUOffsetTRelativeSlot(slot, int(value), 0)
            elif kind == "b":
                b.PrependInt8Slot(slot, int(value), 0)
            else:
                b.PrependUint32Slot(slot, int(value), 0)
        return b.EndObject()

    def offsets(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def floats(values: list[float]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(float(v))
        return b.EndVector()

    # input: an image, normalized, with the value range the normalization produces
    norm = table([(0, "o", floats([mean] * channels)), (1, "o", floats([std] * channels))])
    process = table([(0, "b", PROCESS_NORMALIZATION), (1, "o", norm)])
    image = table([(0, "b", COLOR_SPACES.get(meta.color, 0))])
    in_content = table([(0, "b", CONTENT_IMAGE), (1, "o", image)])
    in_fields: list[tuple[int, str, int | float]] = []
    if float_input:
        stats = table([(0, "o", floats([(PIXEL_MAX - mean) / std] * channels)),
                       (1, "o", floats([(0.0 - mean) / std] * channels))])
        in_fields.append((5, "o", stats))
    in_name, in_desc = b.CreateString("image"), b.CreateString("Input image to be classified.")
    in_meta = table([(0, "o", in_name), (1, "o", in_desc), (3, "o", in_content),
                     (4, "o", offsets([process])), *in_fields])

    # output: one score per class, labels in labels.txt
    label_name = b.CreateString(LABEL_FILE)
    label_desc = b.CreateString("Labels for the classes the model can recognize, one per line.")
    label_file = table([(0, "o", label_name), (1, "o", label_desc), (2, "b", TENSOR_AXIS_LABELS)])
    feature = table([])
    out_content = table([(0, "b", CONTENT_FEATURE), (1, "o", feature)])
    out_stats = table([(0, "o", floats([1.0])), (1, "o", floats([0.0]))]) if meta.output == "softmax" else 0
    out_name = b.CreateString("probability" if meta.output == "softmax" else "logits")
    out_desc = b.CreateString("Probabilities of the classes." if meta.output == "softmax" else "Class scores (logits).")
    out_fields: list[tuple[int, str, int | float]] = [(0, "o", out_name), (1, "o", out_desc), (3, "o", out_content),
                                                      (6, "o", offsets([label_file]))]
    if out_stats:
        out_fields.append((5, "o", out_stats))
    out_meta = table(out_fields)

    subgraph = table([(2, "o", offsets([in_meta])), (3, "o", offsets([out_meta]))])
    strings = [b.CreateString(s) for s in (name, description, version, "edgekit", MIN_PARSER_VERSION)]
    root = table([(0, "o", strings[0]), (1, "o", strings[1]), (2, "o", strings[2]), (3, "o", offsets([subgraph])),
                  (4, "o", strings[3]), (7, "o", strings[4])])
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def pack_associated_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """``model`` with ``files`` appended as a zip archive (tflite-support's packing; the flatbuffer is untouched)."""
    out = io.BytesIO()
    out.write(model)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as z:  # "a" on a non-zip stream appends a new archive
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed time: deterministic bytes
            z.writestr(info, data)
    return out.getvalue()


def label_file_bytes(labels: tuple[str, ...]) -> bytes:
    return "".join(f"{label}\n" for label in labels).encode("utf-8")


# --------------------------------------------------------------------------- reading


def packed_files(raw: bytes) -> dict[str, bytes]:
    """The associated files zipped onto the end of a model (empty when there are none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return {n: z.read(n) for n in z.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError):
        return {}


def _files(t: Table, slot: int) -> list[tuple[str, int]]:
    return [(f.string(0), int(f.scalar(2, "b"))) for f in t.tables(slot)]


def read_standard_metadata(model: TFLiteModel, where: str = "model") -> StandardMetadata | None:
    """The ``TFLITE_METADATA`` entry of ``model`` with its labels, or None when the model has none."""
    if METADATA_NAME not in model.metadata:
        return None
    data = model.buffer_bytes(model.metadata[METADATA_NAME])
    if len(data) < 8 or data[4:8] != METADATA_IDENTIFIER:
        raise ModelError(f"{where}: {METADATA_NAME} is not a ModelMetadata flatbuffer (no 'M001' identifier)")
    try:
        root = flatbuffer_root(data)
        mean: tuple[float, ...] = ()
        std: tuple[float, ...] = ()
        color, label_file = "", ""
        subgraphs = root.tables(3)
        if subgraphs:
            for tm in subgraphs[0].tables(2)[:1]:
                for unit in tm.tables(4):
                    kind, options = unit.union(0, 1)
                    if kind == PROCESS_NORMALIZATION and options is not None:
                        mean, std = tuple(options.floats(0)), tuple(options.floats(1))
                content = tm.table(3)
                if content is not None:
                    kind, props = content.union(0, 1)
                    if kind == CONTENT_IMAGE and props is not None:
                        code = int(props.scalar(0, "b"))
                        color = next((k for k, v in COLOR_SPACES.items() if v == code), "")
            for tm in subgraphs[0].tables(3)[:1]:
                label_file = next((n for n, kind in _files(tm, 6) if kind == TENSOR_AXIS_LABELS), "")
        name, description, parser = root.string(0), root.string(1), root.string(7)
    except (struct.error, IndexError) as e:
        raise ModelError(f"{where}: corrupt {METADATA_NAME} flatbuffer ({e})") from None
    files = packed_files(model.raw)
    labels: tuple[str, ...] = ()
    if label_file:
        if label_file not in files:
            raise ModelError(f"{where}: label file {label_file!r} is named in {METADATA_NAME} "
                             "but not packed in the model")
        labels = tuple(line for line in files[label_file].decode("utf-8", "replace").splitlines() if line)
    return StandardMetadata(name, description, parser, mean, std, color, label_file, labels, tuple(files))


def meta_fields(std_meta: StandardMetadata, input_shape: list[int]) -> dict[str, object]:
    """The :class:`ModelMeta` fields the standard form carries, in edgekit's ``pixel / 255`` convention."""
    out: dict[str, object] = {"labels": list(std_meta.labels), "input_shape": [int(d) for d in input_shape[1:]]}
    if std_meta.mean and std_meta.std:
        out.update(scale=1.0 / PIXEL_MAX, mean=float(std_meta.mean[0]) / PIXEL_MAX,
                   std=float(std_meta.std[0]) / PIXEL_MAX)
    if std_meta.color:
        out["color"] = std_meta.color
    return out
