"""Reproducible bytes: .keras files and ONNX conversions depend only on the model."""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path

import numpy as np

from edgekit._tf import keras


def _model(name: str = "repro") -> object:
    k = keras()
    k.utils.set_random_seed(0)
    return k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Conv2D(2, 3, activation="relu"), k.layers.Flatten(),
                         k.layers.Dense(3)], name=name)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_keras_bytes_do_not_depend_on_the_clock(tmp_path: Path) -> None:
    """Same-seed runs write the same .keras bytes: metadata's date_saved and the zip timestamps are fixed."""
    from edgekit.models.files import FIXED_ZIP_TIME, load_keras_file, save_keras

    model = _model()
    save_keras(model, tmp_path / "a.keras")
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    save_keras(model, tmp_path / "b.keras")
    assert _sha((tmp_path / "a.keras").read_bytes()) == _sha((tmp_path / "b.keras").read_bytes())
    with zipfile.ZipFile(tmp_path / "a.keras") as z:
        assert {i.date_time for i in z.infolist()} == {FIXED_ZIP_TIME}
        assert b"1980-01-01" in z.read("metadata.json")
    loaded = load_keras_file(tmp_path / "a.keras")
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_onnx_bytes_do_not_depend_on_earlier_conversions(tmp_path: Path) -> None:
    """tf2onnx's process-wide name counter gave a run that reused cached parents other node names."""
    import onnx

    from edgekit.export.convert import keras2onnx
    from edgekit.models.files import load_keras_file, save_keras

    model = _model()
    first = keras2onnx(model, (8, 8, 1))
    keras2onnx(_model("other"), (8, 8, 1))  # moves tf2onnx's counter on
    second = keras2onnx(model, (8, 8, 1))
    save_keras(model, tmp_path / "m.keras")
    from_cache = keras2onnx(load_keras_file(tmp_path / "m.keras"), (8, 8, 1))
    assert _sha(first) == _sha(second) == _sha(from_cache)
    onnx.checker.check_model(onnx.load_from_string(first))
