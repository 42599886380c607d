"""Saving and loading the tf_keras models edgekit itself writes (trusted files)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from edgekit._tf import keras, tfmot
from edgekit.fsutil import atomic_path


def copy_model(model: Any) -> Any:
    """An independent, uncompiled copy of a tf_keras model (new layers, same weights)."""
    k = keras()
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"


def save_keras(model: Any, path: Path) -> Path:
    """Save a tf_keras model in the native ``.keras`` format (weights only, no optimizer state), atomically.

    The bytes depend only on the model: the zip timestamps and metadata's ``date_saved`` are fixed,
    so same-seed runs write identical files (and the cache's digests stay comparable).
    """
    with atomic_path(path, suffix=".keras") as tmp:
        copy_model(model).save(str(tmp))
        tmp.write_bytes(deterministic_zip(tmp.read_bytes()))
    return path


def deterministic_zip(data: bytes) -> bytes:
    """The same ``.keras`` archive with fixed member timestamps and a fixed ``date_saved``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(body)
                if "date_saved" in meta:
                    meta["date_saved"] = FIXED_DATE_SAVED
                body = json.dumps(meta).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, body)
    return out.getvalue()


def load_keras_file(path: Path) -> Any:
    """Load a ``.keras`` file edgekit wrote (QAT models need TFMOT's quantize scope)."""
    k = keras()
    with tfmot().quantization.keras.quantize_scope():
        return k.models.load_model(str(path), compile=False)
