"""Metadata that travels inside exported models: labels, input layout, preprocessing, lineage.

* ONNX: ``metadata_props`` key ``edgekit`` holds the JSON document, plus the
  conventional ``labels`` key (a JSON list) for tools that only look for that.
* TFLite: the standard TFLite Support metadata (a ``ModelMetadata`` flatbuffer under
  ``TFLITE_METADATA`` with normalization, image input and a ``labels.txt`` packed onto
  the end of the file; see :mod:`edgekit.export.tflite_metadata`) for Android Studio,
  the Task Library and TFLite Support, plus the entry ``edgekit_metadata`` whose buffer holds
  the JSON document above (lineage: artifact id, edgekit version, dataset, output kind).
  Readers take labels, input shape, colour and normalization from the standard form when
  it is there; files written before it (JSON entry only) still read the same.

Reading never needs TensorFlow: TFLite files are decoded with
:mod:`edgekit.export.tflite_reader`, ONNX files with ``onnx`` or, on a device
that only has it, ``onnxruntime``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.artifact import ModelMeta
from edgekit.errors import ExportError, ModelError
from edgekit.formats import format_of, spec
from edgekit.fsutil import write_bytes

log = logging.getLogger(__name__)

ONNX_KEY = "edgekit"
ONNX_LABELS_KEY = "labels"
TFLITE_NAME = "edgekit_metadata"
SCHEMA_VERSION = 1
BUFFER_ALIGNMENT = 16  # schema.fbs: Buffer.data (force_align: 16); TFLite Micro relies on it


def metadata_document(meta: ModelMeta, artifact_id: str) -> dict[str, Any]:
    """The JSON document embedded in a model file."""
    return {"schema": SCHEMA_VERSION, **meta.to_dict(), "edgekit_version": __version__, "artifact_id": artifact_id}


def embed_metadata(path: Path, meta: ModelMeta, artifact_id: str) -> None:
    """Embed ``meta`` (and the producing edgekit version and ``artifact_id``) into an .onnx or .tflite file.

    The file is rewritten atomically; an existing edgekit entry is replaced. The format's handler
    (:mod:`edgekit.formats`) picks the writer below: :func:`embed_onnx` or :func:`embed_tflite`.
    """
    path = Path(path)
    fmt = spec(format_of(path))
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    mode = path.stat().st_mode & 0o777
    fmt.handler().embed_metadata(path, meta, artifact_id)
    os.chmod(path, mode)  # the atomic rewrite must not change who may read the model


def embed_onnx(path: Path, meta: ModelMeta, artifact_id: str) -> None:
    """ONNX: the document under ``metadata_props`` key ``edgekit``, plus the conventional ``labels``; tensor and
    node names shortened (:mod:`edgekit.export.short_names`)."""
    _embed_onnx(path, metadata_document(meta, artifact_id), list(meta.labels))


def embed_tflite(path: Path, meta: ModelMeta, artifact_id: str) -> None:
    """TFLite: the standard TFLite Support metadata plus the ``edgekit_metadata`` JSON entry; tensor names
    shortened (:mod:`edgekit.export.short_names`)."""
    data, names = tflite_short_names(path.read_bytes(), str(path))
    doc = json.dumps({**metadata_document(meta, artifact_id), "short_names": _with_earlier(path, names)},
                     sort_keys=True)
    write_bytes(path, _tflite_with_standard_metadata(data, meta, artifact_id, doc.encode(), str(path)))


def _with_earlier(path: Path, names: dict[str, Any]) -> dict[str, Any]:
    """A short-names record with the model scopes an earlier embed removed from the same file kept."""
    try:
        earlier = (read_metadata_dict(path) or {}).get("short_names") or {}
    except ModelError:
        earlier = {}
    scopes = sorted({*names["scopes"], *earlier.get("scopes", [])})
    return {**names, "scopes": scopes, "bytes_saved": names["bytes_saved"] + int(earlier.get("bytes_saved", 0))}


def read_metadata_dict(path: Path) -> dict[str, Any] | None:
    """The embedded edgekit metadata document of an .onnx or .tflite file, or None when there is none."""
    path = Path(path)
    return spec(format_of(path)).handler().read_metadata_dict(path)


def read_tflite_dict(path: Path) -> dict[str, Any] | None:
    """The edgekit document of a .tflite file (the standard metadata merged in), or None."""
    from edgekit.export.tflite_reader import read_tflite

    model = read_tflite(path)
    doc = None
    if TFLITE_NAME in model.metadata:
        doc = _parse_doc(model.buffer_bytes(model.metadata[TFLITE_NAME]).decode("utf-8", "replace"), path)
    return _merge_standard(model, doc, path)


def read_onnx_dict(path: Path) -> dict[str, Any] | None:
    """The edgekit document of an .onnx file (or only its conventional ``labels``), or None."""
    props = _onnx_props(path)
    if ONNX_KEY in props:
        return _parse_doc(props[ONNX_KEY], path)
    if ONNX_LABELS_KEY in props:  # a foreign model with only conventional labels
        labels = _parse_doc(props[ONNX_LABELS_KEY], path)
        return {"labels": labels} if isinstance(labels, list) else None
    return None


def read_metadata(path: Path) -> ModelMeta | None:
    """The embedded :class:`ModelMeta` of an .onnx or .tflite file, or None when there is none."""
    doc = read_metadata_dict(path)
    if doc is None:
        return None
    try:
        if not isinstance(doc, dict):
            raise TypeError(f"a JSON object was expected, got {type(doc).__name__}")
        return ModelMeta.from_dict(doc)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise ModelError(f"{path}: malformed edgekit metadata ({e})") from None


def _parse_doc(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: embedded edgekit metadata is not valid JSON ({e.msg})") from None


# --------------------------------------------------------------------------- ONNX


def _embed_onnx(path: Path, document: dict[str, Any], labels: list[str]) -> None:
    import onnx

    from edgekit.export.short_names import shorten_onnx

    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError / ValueError / OSError
        raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
    names = shorten_onnx(model)
    doc = json.dumps({**document, **({"short_names": _with_earlier(path, names)} if names else {})}, sort_keys=True)
    keep = [p for p in model.metadata_props if p.key not in (ONNX_KEY, ONNX_LABELS_KEY)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in ((ONNX_KEY, doc), (ONNX_LABELS_KEY, json.dumps(labels))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    write_bytes(path, model.SerializeToString())


def _onnx_props(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file via ``onnx`` (weights not loaded) or ``onnxruntime``."""
    try:
        import onnx
    except ImportError:
        pass
    else:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:
            raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
        return {p.key: p.value for p in model.metadata_props}
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(f"{path}: reading ONNX metadata needs the onnx or onnxruntime package") from None
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
    return dict(sess.get_modelmeta().custom_metadata_map)


# --------------------------------------------------------------------------- TFLite


def _schema() -> Any:
    """The flatbuffers-generated TFLite schema (LiteRT ships it; TF's copy is the fallback)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        from edgekit._tf import tf

        tf()
        from tensorflow.lite.python import schema_py_generated  # type: ignore[no-redef]
    return schema_py_generated


def _merge_standard(model: Any, doc: dict[str, Any] | None, path: Path) -> dict[str, Any] | None:
    """``doc`` with labels, input shape, colour and normalization taken from the standard metadata, if any."""
    from edgekit.export.tflite_metadata import meta_fields, read_standard_metadata

    standard = read_standard_metadata(model, str(path))
    if standard is None:
        return doc
    graph = model.subgraphs[0] if model.subgraphs else None
    shape: Iterable[int] = (next((t.shape for t in graph.tensors if t.index == graph.inputs[0]), [])
                            if graph and graph.inputs else [])
    fields = meta_fields(standard, list(shape))
    if not standard.labels:
        fields.pop("labels")
    base = doc if isinstance(doc, dict) else {}
    about = {"entry": "TFLITE_METADATA", "min_parser_version": standard.min_parser_version,
             "label_file": standard.label_file, "packed_files": list(standard.packed_files)}
    return {**base, **fields, "tflite_metadata": about}


def _tflite_with_standard_metadata(data: bytes, meta: ModelMeta, artifact_id: str, doc: bytes, where: str) -> bytes:
    """The TFLite model with the standard ``TFLITE_METADATA`` entry, the edgekit JSON entry and ``labels.txt``
    packed."""
    from edgekit.export.tflite_metadata import (
        LABEL_FILE,
        METADATA_NAME,
        build_model_metadata,
        label_file_bytes,
        pack_associated_files,
    )
    from edgekit.export.tflite_reader import parse_tflite

    model = parse_tflite(data, where)
    graph = model.subgraphs[0] if model.subgraphs else None
    first = next((t for t in graph.tensors if t.index == graph.inputs[0]), None) if graph and graph.inputs else None
    float_input = first is not None and first.dtype == "float32"
    standard = build_model_metadata(
        meta, name=meta.dataset or "edgekit image classifier", version=artifact_id, float_input=float_input,
        description=f"Image classifier ({len(meta.labels)} classes) exported by edgekit {__version__}.")
    flat = _tflite_with_metadata(data, {METADATA_NAME: standard, TFLITE_NAME: doc}, where)
    return pack_associated_files(flat, {LABEL_FILE: label_file_bytes(meta.labels)})


def _tflite_with_metadata(data: bytes, entries: dict[str, bytes], where: str) -> bytes:
    """Re-serialise a TFLite model with each metadata entry ``name`` set to ``payload`` (bytes after the
    flatbuffer, such as a previously packed zip of associated files, are dropped)."""
    import numpy as np

    def edit(model: Any) -> None:
        fb = _schema()
        model.buffers = model.buffers or [fb.BufferT()]
        model.metadata = model.metadata or []
        for name, payload in entries.items():
            value = np.frombuffer(payload, np.uint8)
            entry = next((m for m in model.metadata if _entry_name(m.name) == name), None)
            if entry is not None:
                model.buffers[entry.buffer].data = value
            else:
                buffer = fb.BufferT()
                buffer.data = value
                model.buffers.append(buffer)
                entry = fb.MetadataT()
                entry.name = name
                entry.buffer = len(model.buffers) - 1
                model.metadata.append(entry)

    return _tflite_rewrite(data, where, edit, sum(len(p) for p in entries.values()))


def tflite_short_names(data: bytes, where: str) -> tuple[bytes, dict[str, Any]]:
    """The TFLite model with short tensor names (:func:`edgekit.export.short_names.shorten_tflite`) and the record
    for its metadata."""
    from edgekit.export.short_names import shorten_tflite

    names: dict[str, Any] = {}
    return _tflite_rewrite(data, where, lambda model: names.update(shorten_tflite(model))), names


def _tflite_rewrite(data: bytes, where: str, edit: Callable[[Any], None], extra: int = 0) -> bytes:
    """Re-serialise a TFLite model after ``edit`` changed its ``ModelT`` (the flatbuffers object API); bytes
    after the flatbuffer are dropped. Buffer data stay 16-byte aligned, as the C++ converter writes them."""
    from edgekit.export.tflite_reader import parse_tflite

    parse_tflite(data, where)  # validates the identifier with a clear message
    fb = _schema()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    if any(b.offset and b.offset > 1 for b in model.buffers or []):
        raise ExportError(f"{where}: models with out-of-flatbuffer (>2 GB) buffers are not supported")
    edit(model)
    builder = _aligned_builder_class()(max(1024, len(data) + extra + 4096))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _entry_name(name: bytes | str | None) -> str:
    """A metadata entry's name: bytes when read from a file, str when added here."""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else (name or "")


@functools.cache
def _aligned_builder_class() -> type:
    import flatbuffers
    import numpy as np

    class AlignedBuilder(flatbuffers.Builder):  # type: ignore[misc]
        """A Builder that aligns byte vectors (tensor buffers) to 16 bytes, like ``force_align: 16``."""

        head: int  # the base class's write position (flatbuffers is untyped)

        def CreateNumpyVector(self, x: Any) -> int:  # noqa: N802 (flatbuffers API name)
            if x.dtype != np.uint8:
                return super().CreateNumpyVector(x)
            payload = x.tobytes()
            self.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            self.head = self.head - len(payload)
            self.Bytes[self.head:self.head + len(payload)] = payload
            self.vectorNumElems = len(payload)
            return self.EndVector()

    return AlignedBuilder
