"""examples/web: the onnxruntime-web page classifies a digit exactly like ONNX Runtime in Python."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from tests.helpers.browser import Browser, chromium_missing_reason

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # every test uses the model trained below

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "examples" / "web"
LABELS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # not the indices


def _missing() -> str | None:
    if (reason := chromium_missing_reason()) is not None:
        return reason
    if not (WEB / "node_modules" / "onnxruntime-web" / "dist").is_dir():
        return "needs onnxruntime-web: run `npm ci --prefix examples/web`"
    return None


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A tiny CNN trained one epoch on `digits`, exported to ONNX with edgekit metadata; and its test images."""
    if (reason := _missing()) is not None:
        pytest.skip(reason)
    from edgekit._tf import keras, tf
    from edgekit.data.datasets import load_dataset

    ds = load_dataset("digits")
    k = keras()
    k.utils.set_random_seed(0)
    net = k.Sequential([
        k.layers.Input((28, 28, 1)),
        k.layers.Conv2D(8, 3, activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.Flatten(),
        k.layers.Dense(10, activation="softmax"),
    ])
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(ds.x_train, ds.y_train, epochs=1, batch_size=32, verbose=0)
    import tf2onnx

    proto, _ = tf2onnx.convert.from_keras(net, input_signature=[tf().TensorSpec([None, 28, 28, 1], tf().float32, name="input")])
    out = tmp_path_factory.mktemp("web-model")
    path = out / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    _embed_labels(path)
    return path, ds.x_test


def _embed_labels(path: Path) -> None:
    """Embed edgekit metadata the way exports do (edgekit.export.metadata), so the page must read it from the model."""
    from edgekit.artifact import ModelMeta
    from edgekit.export.metadata import embed_metadata

    embed_metadata(path, ModelMeta(labels=LABELS, input_shape=(28, 28, 1), dataset="digits"), "web-test")


@pytest.fixture(scope="module")
def server(model: tuple[Path, np.ndarray]) -> Iterator[str]:
    """Serve examples/web at / and the test's model folder at /_test/ on 127.0.0.1."""
    test_dir = model[0].parent

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            p = unquote(urlsplit(path).path)
            if p.startswith("/_test/"):
                return str(test_dir / Path(p).name)
            return super().translate_path(path)

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(WEB)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _write_png(path: Path, image: np.ndarray) -> np.ndarray:
    """Save a [0,1] HxWx1 image as an 8-bit grayscale PNG; return exactly what the PNG holds, as floats."""
    from PIL import Image

    pixels = np.round(image[..., 0] * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return (pixels.astype(np.float32) / 255.0)[None, ..., None]


def test_page_predicts_like_onnxruntime(model: tuple[Path, np.ndarray], server: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    path, x_test = model
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    picks = [0, 1, 2, 3, 4]
    with Browser(width=900, height=700, timeout_s=60) as browser:
        for n, i in enumerate(picks):
            x = _write_png(path.parent / f"digit{i}.png", x_test[i])
            expected = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
            page = browser.open(f"{server}/?model=_test/model.onnx&image=_test/digit{i}.png")
            state = page.wait_for("['done','error'].includes(document.body.dataset.state) && document.body.dataset.state",
                                  timeout_s=60)
            status = page.eval("document.getElementById('status').textContent")
            assert state == "done", status
            shown = page.eval("document.getElementById('label').textContent")
            scores = np.array(page.eval("window.lastScores"), dtype=np.float32)
            assert "labels from model metadata" in status
            assert shown == LABELS[int(np.argmax(expected))], f"image {i}: page says {shown}, Python {expected}"
            np.testing.assert_allclose(scores, expected, atol=1e-4)
            assert page.console_errors() == []
            if n == 0:
                shot = page.screenshot(tmp_path / "web-example.png", full_page=False)
                if os.environ.get("EDGEKIT_TEST_ARTIFACTS"):
                    (REPO / "test-artifacts").mkdir(exist_ok=True)
                    shutil.copy(shot, REPO / "test-artifacts" / "web-example.png")


def test_page_falls_back_to_labels_json(model: tuple[Path, np.ndarray], server: str, tmp_path: Path) -> None:
    """A model without embedded labels gets them from labels.json beside it."""
    import onnx

    path, x_test = model
    bare = onnx.load(str(path))
    del bare.metadata_props[:]
    folder = path.parent
    (folder / "bare.onnx").write_bytes(bare.SerializeToString())
    (folder / "labels.json").write_text(json.dumps([f"class-{i}" for i in range(10)]))
    _write_png(folder / "fallback.png", x_test[5])
    with Browser(width=900, height=700, timeout_s=60) as browser:
        page = browser.open(f"{server}/?model=_test/bare.onnx&image=_test/fallback.png")
        assert page.wait_for("['done','error'].includes(document.body.dataset.state) && document.body.dataset.state",
                             timeout_s=60) == "done"
        assert page.eval("document.getElementById('label').textContent").startswith("class-")
        assert "labels.json" in page.eval("document.getElementById('status').textContent")
        assert page.console_errors() == []


def test_drawing_on_the_canvas_classifies(model: tuple[Path, np.ndarray], server: str) -> None:
    """A stroke drawn with the mouse is downscaled to 28x28 and classified on release."""
    with Browser(width=900, height=700, timeout_s=60) as browser:
        page = browser.open(f"{server}/?model=_test/model.onnx")
        page.wait_for("document.body.dataset.state === 'ready'", timeout_s=60)
        box = page.eval("(() => { const r = document.getElementById('pad').getBoundingClientRect();"
                        " return [r.left, r.top, r.width, r.height]; })()")
        x = box[0] + box[2] / 2
        points = [(x, box[1] + box[3] * f) for f in np.linspace(0.2, 0.8, 12)]  # a vertical stroke: a "1"
        for kind, (px, py) in [("mousePressed", points[0])] + [("mouseMoved", p) for p in points[1:]] + \
                [("mouseReleased", points[-1])]:
            page.send("Input.dispatchMouseEvent", {"type": kind, "x": px, "y": py, "button": "left",
                                                   "buttons": 0 if kind == "mouseReleased" else 1, "clickCount": 1})
        assert page.wait_for("document.body.dataset.state === 'done' && document.body.dataset.state") == "done"
        assert page.eval("document.getElementById('label').textContent") in LABELS
        ink = page.eval("(() => { const d = document.getElementById('pad').getContext('2d')"
                        ".getImageData(0, 0, 280, 280).data; let n = 0; for (let i = 0; i < d.length; i += 4)"
                        " n += d[i] > 128; return n; })()")
        assert ink > 1000  # the stroke really landed on the canvas
        assert page.console_errors() == []


def test_prepare_model_copies_the_model_and_reads_embedded_labels(model: tuple[Path, np.ndarray], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_model", WEB / "prepare_model.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([str(model[0]), "--dest", str(tmp_path)]) == 0
    assert (tmp_path / "model.onnx").read_bytes() == model[0].read_bytes()
    assert not (tmp_path / "labels.json").exists() and "10 labels embedded" in capsys.readouterr().out
    assert mod.main([str(tmp_path / "missing.onnx"), "--dest", str(tmp_path)]) == 2
