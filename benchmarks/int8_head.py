"""Does an int8 file's classifier head belong in float? Top-1 changes, ties, size and speed, head int8 vs float.

An int8 softmax output steps by 1/256: two classes within that of each other tie and argmax takes the lower
index. edgekit keeps the head (the last dense layer and its softmax) in float by default (``ptq_int8.float_head``):
TFLite through the converter's quantization debugger, ONNX by removing the Q/DQ pairs on the head's outputs
(:func:`edgekit.compression.quantize.float_head_outputs`). For each model, both int8 files of each format against
the fp32 file of that format, on images no model trained or calibrated on:

- top-1 changes against the fp32 file (what the unlabelled certificate bounds) and exact ties in the output;
- test accuracy, raw bytes, p50 latency at batch 1 and 32 (1 thread, interleaved in this process).

Models: the reference CNN trained by edgekit's recipe on 4,000 and on all 60,000 Fashion-MNIST training images
(5 epochs), the compact BN/depthwise model on 4,000, and the ResNet-8-style model on generated 32×32 RGB shapes.
Writes the ``int8-head`` section of benchmarks/RESULTS.md.

    python benchmarks/int8_head.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402
from _testmodels import test_models, trained_reference_cnn, zoo  # noqa: E402
from _timing import interleaved, scores  # noqa: E402

CALIBRATION = 500


def _models(work: Path) -> list[tuple[str, Any, np.ndarray, np.ndarray, np.ndarray]]:
    """(label, trained model, calibration images, evaluation images, their labels) per model."""
    from edgekit._tf import keras
    from edgekit.data.datasets import load_dataset
    from edgekit.train.trainer import seed_everything

    out = []
    for n in (4000, None):
        ds = load_dataset("fashion-mnist", train_limit=n)
        model = trained_reference_cnn(work / f"reference-{n or 'full'}.keras", ds, 5)
        label = f"reference CNN, {len(ds.x_train):,} Fashion-MNIST training images"
        x_eval = ds.x_extra if n is not None and len(ds.x_extra) >= 10000 else ds.x_test
        y_eval = None if x_eval is not ds.x_test else ds.y_test
        out.append((label, model, ds.x_train[:CALIBRATION], x_eval[:10000], y_eval))
    compact, ds = test_models().train_compact_cnn("fashion-mnist", train_limit=4000)
    out.append((f"compact BN/depthwise, {len(ds.x_train):,} Fashion-MNIST training images", compact,
                ds.x_train[:CALIBRATION], ds.x_extra[:10000], None))
    z = zoo()
    k = keras()
    x, y = z.shapes_rgb(2400 + 4000, seed=1)
    x = x.astype(np.float32) / 255.0
    path = work / "resnet8.keras"
    if path.exists():
        resnet = k.models.load_model(path)
    else:
        seed_everything(0)
        resnet = z.build("resnet8", k, classes=4)
        resnet.compile(k.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        resnet.fit(x[:2400], y[:2400], epochs=8, batch_size=32, verbose=0)
        resnet.save(path)
    out.append(("ResNet-8, 2,400 generated 32×32 RGB shapes", resnet, x[:CALIBRATION], x[2400:], y[2400:]))
    return out


def _files(model: Any, calib: np.ndarray, folder: Path) -> dict[str, Path]:
    import dataclasses

    from edgekit.compression.mixed import keras2tflite_mixed
    from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static
    from edgekit.export.convert import keras2onnx, keras2tflite

    shape = tuple(int(d) for d in model.input_shape[1:])
    files = {k: folder / k for k in ("fp32.tflite", "int8 head.tflite", "float head.tflite", "fp32.onnx",
                                     "int8 head.onnx", "float head.onnx")}
    files["fp32.tflite"].write_bytes(keras2tflite(model))
    files["int8 head.tflite"].write_bytes(keras2tflite(model, quantization="int8", representative=calib))
    files["float head.tflite"].write_bytes(keras2tflite_mixed(model, calib, [], float_head=True))
    files["fp32.onnx"].write_bytes(keras2onnx(model, shape))
    for name, head in (("int8 head.onnx", False), ("float head.onnx", True)):
        ort_quantize_static(files["fp32.onnx"], files[name], calib,
                            dataclasses.replace(OrtQuantConfig(calibration_samples=len(calib)), float_head=head))
    return files


def measure(label: str, model: Any, calib: np.ndarray, x: np.ndarray, y: np.ndarray | None,
            repeats: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(model, calib, Path(tmp))
        outputs = {k: scores(p, x) for k, p in files.items()}
        times = interleaved(files, repeats=repeats, shape=x.shape[1:])
        rows = []
        for fmt in ("tflite", "onnx"):
            ref = outputs[f"fp32.{fmt}"]
            for kind in ("fp32", "int8 head", "float head"):
                name = f"{kind}.{fmt}"
                s = outputs[name]
                top = np.sort(s, axis=1)
                rows.append({
                    "model": label, "file": name, "bytes": files[name].stat().st_size,
                    "changed": int((s.argmax(1) != ref.argmax(1)).sum()), "images": len(x),
                    "ties": int((top[:, -1] == top[:, -2]).sum()),
                    "accuracy": None if y is None else float((s.argmax(1) == y).mean()),
                    "b1": statistics.median(times[(name, 1)]), "b32": statistics.median(times[(name, 32)]),
                })
        return rows


def render(rows: list[dict[str, Any]], command: str) -> str:
    lines = ["## int8's classifier head: int8 or float (top-1 changes, ties, size, speed)", "",
             f"Command: `{command.strip()}`", "", f"Machine: {machine_line()}.", "",
             "int8 head: the converter's full-integer PTQ (TFLite) and ONNX Runtime's QDQ with edgekit's layout pass, "
             "the softmax output in int8; float head: the same with the last dense layer and its softmax in float "
             "(edgekit's default, `ptq_int8.float_head`). Top-1 changed and ties on images no model trained or "
             f"calibrated on (calibration: {CALIBRATION} training images); changes against the fp32 file of the same "
             "format. p50: 1 thread, LiteRT (XNNPACK) or ONNX Runtime's CPU EP, every file of a model interleaved, "
             "median of 3 rounds.", "",
             "| model | file | bytes | top-1 changed | ties | accuracy | p50 µs b1 | p50 µs b32 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        acc = "" if r["accuracy"] is None else f"{r['accuracy'] * 100:.2f} %"
        lines.append(f"| {r['model']} | {r['file']} | {r['bytes']:,} | {r['changed']} of {r['images']:,} "
                     f"({r['changed'] / r['images'] * 100:.2f} %) | {r['ties']} | {acc} | {r['b1']:.1f} | "
                     f"{r['b32']:.1f} |")
    lines.append("")
    for fmt in ("tflite", "onnx"):
        pairs = [(a, b) for a in rows for b in rows if a["model"] == b["model"] and a["file"] == f"int8 head.{fmt}"
                 and b["file"] == f"float head.{fmt}"]
        fewer = sum(b["changed"] <= a["changed"] for a, b in pairs)
        slower = [b["b1"] / a["b1"] for a, b in pairs]
        changes = ", ".join(f"{a['changed']} → {b['changed']}" for a, b in pairs)
        lines.append(f"- {fmt}: the float head changes no more top-1 classes than the int8 head on {fewer} of "
                     f"{len(pairs)} models ({changes}); batch-1 time float head ÷ int8 head: "
                     + ", ".join(f"{s:.2f}" for s in slower))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/int8-head"), help="trained models are kept (reused) here")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for label, model, calib, x, y in _models(args.work):
        rows += measure(label, model, calib, x, y, args.repeats)
    command = "python benchmarks/int8_head.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(rows, command)
    if not args.no_write:
        update_section("int8-head", body)
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
