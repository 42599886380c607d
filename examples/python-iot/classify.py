#!/usr/bin/env python3
"""Classify images on a small Linux board (Raspberry Pi style) with an edgekit-exported model.

    python classify.py MODEL.tflite|MODEL.onnx IMAGE_OR_FOLDER [...]
    python classify.py MODEL.tflite - --stdin npy   < images.npy
    python classify.py MODEL.onnx   - --stdin raw   < pixels.u8

Labels, input size, colour mode and preprocessing come from the metadata edgekit
embeds in the model file, so nothing else has to be copied to the device.
Runtime: LiteRT (``ai-edge-litert``, or the older ``tflite-runtime``) for .tflite,
ONNX Runtime for .onnx — whichever is installed. Needs numpy and, for image
files, Pillow. Prints label, confidence and inference latency for each image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm")


def fail(message: str) -> None:
    print(f"classify: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# --------------------------------------------------------------------------- metadata


def read_metadata(model: Path) -> dict[str, Any]:
    """The edgekit metadata embedded in ``model`` (labels, input shape, preprocessing)."""
    try:
        from edgekit.export.metadata import read_metadata_dict  # pure Python; no TensorFlow
    except ImportError:
        doc = _read_metadata_standalone(model)
    else:
        doc = read_metadata_dict(model)
    if not doc or not doc.get("labels"):
        fail(f"{model}: no edgekit metadata with labels in the model (export it with edgekit)")
    return doc


def _read_metadata_standalone(model: Path) -> dict[str, Any] | None:
    """Fallback when edgekit is not installed on the device.

    A .tflite file carries the standard TFLite Support metadata (``TFLITE_METADATA``: image
    input, NormalizationOptions, a ``labels.txt`` zipped onto the end of the file) and, from
    edgekit, a JSON entry ``edgekit_metadata`` (the only one in files exported before the
    standard form). The standard form wins for labels and normalization.
    """
    if model.suffix == ".onnx":
        import onnxruntime as ort

        props = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        return json.loads(props["edgekit"]) if "edgekit" in props else None
    try:
        from ai_edge_litert.schema_py_generated import Model  # LiteRT ships the flatbuffer schema
    except ImportError:
        fail("reading .tflite metadata needs edgekit (pip install edgekit) or ai-edge-litert")
    data = model.read_bytes()
    m = Model.GetRootAs(data, 0)
    entries = {m.Metadata(i).Name(): m.Buffers(m.Metadata(i).Buffer()).DataAsNumpy().tobytes()
               for i in range(m.MetadataLength())}
    doc = json.loads(entries[b"edgekit_metadata"]) if b"edgekit_metadata" in entries else None
    if b"TFLITE_METADATA" not in entries:
        return doc
    doc = dict(doc or {})
    graph = m.Subgraphs(0)
    doc["input_shape"] = [int(d) for d in graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()[1:]]
    doc.update(_standard_fields(entries[b"TFLITE_METADATA"], data))
    return doc


def _standard_fields(buf: bytes, model_bytes: bytes) -> dict[str, Any]:
    """Labels, colour and normalization from a ModelMetadata flatbuffer (metadata_schema.fbs)."""
    import io
    import zipfile

    from flatbuffers.table import Table  # installed with LiteRT
    from flatbuffers.util import GetBufferIdentifier

    def table(t: Table, slot: int) -> Table | None:
        off = t.Offset(4 + 2 * slot)
        return Table(t.Bytes, t.Indirect(t.Pos + off)) if off else None

    def tables(t: Table, slot: int) -> list[Table]:
        off = t.Offset(4 + 2 * slot)
        if not off:
            return []
        start = t.Vector(off)
        return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(off))]

    def floats(t: Table, slot: int) -> list[float]:
        off = t.Offset(4 + 2 * slot)
        if not off:
            return []
        return [float(v) for v in np.frombuffer(t.Bytes, "<f4", t.VectorLen(off), t.Vector(off))]

    def byte(t: Table, slot: int) -> int:
        off = t.Offset(4 + 2 * slot)
        return int(np.frombuffer(t.Bytes, np.int8, 1, t.Pos + off)[0]) if off else 0

    def string(t: Table, slot: int) -> str:
        off = t.Offset(4 + 2 * slot)
        return t.String(t.Pos + off).decode() if off else ""

    if GetBufferIdentifier(buf, 0) != b"M001":
        return {}
    root = Table(bytearray(buf), int(np.frombuffer(buf, "<u4", 1, 0)[0]))
    out: dict[str, Any] = {}
    graph = (tables(root, 3) or [None])[0]
    if graph is None:
        return out
    for tensor in tables(graph, 2)[:1]:  # the input image
        for unit in tables(tensor, 4):
            options = table(unit, 1)
            if byte(unit, 0) == 1 and options is not None:  # NormalizationOptions on 0..255 pixels
                mean, std = floats(options, 0), floats(options, 1)
                out.update(scale=1 / 255, mean=float(mean[0]) / 255, std=float(std[0]) / 255)
        content = table(tensor, 3)
        props = table(content, 1) if content is not None else None
        if content is not None and byte(content, 0) == 2 and props is not None:  # ImageProperties
            out["color"] = {1: "rgb", 2: "grayscale"}.get(byte(props, 0), "grayscale")
    for tensor in tables(graph, 3)[:1]:  # the scores: their TENSOR_AXIS_LABELS file
        names = [string(f, 0) for f in tables(tensor, 6) if byte(f, 2) == 2]
        if names:
            with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:  # associated files are zipped onto the model
                out["labels"] = [line for line in z.read(names[0]).decode().splitlines() if line]
    return out


# --------------------------------------------------------------------------- runtimes


class Runner:
    """One loaded model: ``run(x) -> scores`` with float32 NHWC/NCHW input."""

    def __init__(self, model: Path, threads: int) -> None:
        self.runtime = ""
        self._run: Callable[[np.ndarray], np.ndarray]
        if model.suffix == ".onnx":
            self._open_onnx(model, threads)
        elif model.suffix == ".tflite":
            self._open_tflite(model, threads)
        else:
            fail(f"{model}: expected a .tflite or .onnx file")

    def _open_onnx(self, model: Path, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            fail("an .onnx model needs ONNX Runtime (pip install onnxruntime)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        self.runtime = f"onnxruntime {ort.__version__}"
        self._run = lambda x: sess.run(None, {name: x})[0]

    def _open_tflite(self, model: Path, threads: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter

            self.runtime = "ai-edge-litert"
        except ImportError:
            try:
                from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

                self.runtime = "tflite-runtime"
            except ImportError:
                fail("a .tflite model needs LiteRT (pip install ai-edge-litert)")
        it = Interpreter(model_path=str(model), num_threads=threads)
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]

        def run(x: np.ndarray) -> np.ndarray:
            if inp["dtype"] != np.float32:  # integer model input: quantize with the model's own parameters
                scale, zero = inp["quantization"]
                info = np.iinfo(inp["dtype"])
                x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
            if list(it.get_input_details()[0]["shape"]) != list(x.shape):
                it.resize_tensor_input(inp["index"], list(x.shape))
                it.allocate_tensors()
            it.set_tensor(inp["index"], x)
            it.invoke()
            y = it.get_tensor(out["index"])
            if out["dtype"] != np.float32:
                scale, zero = out["quantization"]
                y = (y.astype(np.float32) - zero) * scale
            return y

        self._run = run

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._run(x)


# --------------------------------------------------------------------------- inputs


def preprocess(pixels: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """(H, W[, C]) pixel values 0..255 → one float32 batch in the model's layout and scaling."""
    x = pixels.astype(np.float32)
    if x.ndim == 2:
        x = x[..., None]
    x = x * float(meta.get("scale", 1 / 255))
    x = (x - float(meta.get("mean", 0.0))) / float(meta.get("std", 1.0))
    if meta.get("layout", "NHWC") == "NCHW":
        x = x.transpose(2, 0, 1)
    return x[None].astype(np.float32)


def _hw(meta: dict[str, Any]) -> tuple[int, int, int]:
    shape = list(meta["input_shape"])
    if meta.get("layout", "NHWC") == "NCHW":
        c, h, w = shape
    else:
        h, w, c = shape
    return int(h), int(w), int(c)


def load_image(path: Path, meta: dict[str, Any]) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        fail("reading image files needs Pillow (pip install pillow)")
    h, w, c = _hw(meta)
    with Image.open(path) as im:
        im = im.convert("RGB" if c == 3 else "L")
        if im.size != (w, h):
            im = im.resize((w, h), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def iter_files(paths: list[str], meta: dict[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                fail(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)})")
        elif p.is_file():
            files = [p]
        else:
            fail(f"{p}: no such file or folder")
        for f in files:
            yield str(f), load_image(f, meta)


def iter_stdin(kind: str, meta: dict[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    """Raw uint8 pixels (H*W*C bytes per image, back to back) or one .npy array of 1..N images."""
    h, w, c = _hw(meta)
    data = sys.stdin.buffer.read()
    if kind == "raw":
        size = h * w * c
        if not data or len(data) % size:
            fail(f"stdin: {len(data)} bytes is not a whole number of {h}x{w}x{c} uint8 images")
        images = np.frombuffer(data, np.uint8).reshape(-1, h, w, c)
    else:
        import io

        images = np.load(io.BytesIO(data), allow_pickle=False)
        if images.dtype.kind == "f" and images.size and images.max() <= 1.0:
            images = images * 255.0  # floats in [0, 1] are taken as already divided by 255
        if images.ndim in (2, 3) and images.shape[:2] == (h, w):
            images = images[None]
        if images.shape[1:3] != (h, w):
            fail(f"stdin: array of shape {images.shape} does not hold {h}x{w} images")
    for i, img in enumerate(images):
        yield f"stdin[{i}]", img.reshape(h, w, -1)


# --------------------------------------------------------------------------- main


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Classify images with an edgekit-exported .tflite/.onnx model.")
    ap.add_argument("model", type=Path)
    ap.add_argument("inputs", nargs="+", help="image files or folders, or - to read from stdin")
    ap.add_argument("--stdin", choices=("npy", "raw"), default="npy", help="format of stdin input (default npy)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object per image")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        fail(f"{args.model}: no such model file")

    meta = read_metadata(args.model)
    labels = list(meta["labels"])
    runner = Runner(args.model, args.threads)
    source = iter_stdin(args.stdin, meta) if args.inputs == ["-"] else iter_files(args.inputs, meta)
    latencies = []
    for name, pixels in source:
        x = preprocess(pixels, meta)
        t0 = time.perf_counter_ns()
        scores = np.asarray(runner(x), dtype=np.float32).reshape(-1)
        ms = (time.perf_counter_ns() - t0) / 1e6
        latencies.append(ms)
        probs = softmax(scores) if meta.get("output") == "logits" else scores
        k = int(np.argmax(probs))
        label = labels[k] if k < len(labels) else str(k)
        if args.json:
            print(json.dumps({"input": name, "label": label, "index": k, "confidence": round(float(probs[k]), 6),
                              "latency_ms": round(ms, 4)}))
        else:
            print(f"{name}\t{label}\t{float(probs[k]):.3f}\t{ms:.2f} ms")
    if latencies and not args.json:
        lat = np.asarray(latencies)
        print(f"# {len(lat)} images, {runner.runtime}, p50 {np.percentile(lat, 50):.2f} ms, "
              f"mean {lat.mean():.2f} ms (first call includes warm-up)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
