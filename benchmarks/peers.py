"""edgekit's int8 against what users would pick instead, on the same fp32 models.

The same fp32 reference CNN files (``benchmarks/int8_speed.py`` makes them in runs/int8-speed/models)
and the same 500 calibration images (the first training images) go through:

- ONNX Runtime's ``quantize_static`` with its defaults (QDQ, int8 activations and weights, per-tensor, MinMax);
- NNCF's ``nncf.quantize`` on the ONNX file (defaults);
- Google's LiteRT Quantizer (``litert-quantizer``, formerly ai-edge-quantizer) ``static_wi8_ai8`` recipe on the TFLite file;
- the TFMOT pruning tutorial: ``prune_low_magnitude`` 50 → 80 % (PolynomialDecay, 2 epochs, batch 128),
  ``strip_pruning``, TFLite converter with ``Optimize.DEFAULT``;
- edgekit: its PTQ int8 files (ONNX and TFLite) of the same fp32 model, and of its 80 %-pruned and
  structured + pruned models.

NNCF and LiteRT Quantizer do not install beside edgekit's pins (protobuf, TensorFlow), so they run in
their own virtual environment, made once by this script under runs/.venv-peers (git-ignored) and
reused; the peer code runs there in a subprocess and hands back the model file. Every file is then
timed in one interleaved run (benchmarks/_timing.py: bare loops, 1 thread, p50, 3 repeats).

    python benchmarks/int8_speed.py                     # the fp32 models and edgekit's int8 files
    python benchmarks/peers.py [--models runs/int8-speed/models] [--train-limit 0 --test-limit 0]
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/ helpers (run as a script from the repository root)

SECTION = "peers"

WORKER = r'''
import sys, numpy as np
task, src, calib_path, dst = sys.argv[1:5]
calib = np.load(calib_path)
if task == "nncf":
    import nncf, onnx
    model = onnx.load(src)
    name = model.graph.input[0].name
    ds = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))], lambda x: {name: x})
    onnx.save(nncf.quantize(model, ds, subset_size=len(calib)), dst)
elif task == "litert":
    from litert_quantizer import quantizer, recipe
    from ai_edge_litert.interpreter import Interpreter
    sig = Interpreter(model_path=src).get_signature_list()
    key = next(iter(sig))
    name = sig[key]["inputs"][0]
    qt = quantizer.Quantizer(src)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    result = qt.calibrate({key: [{name: calib[i:i + 1]} for i in range(len(calib))]})
    qt.quantize(result).export_model(dst, overwrite=True)
else:
    raise SystemExit(f"unknown task {task}")
'''


def run_in_peers_venv(task: str, src: Path, calib: np.ndarray, dst: Path) -> None:
    """Run one peer quantizer in the peers' venv (made once by _peers_venv.ensure_venv)."""
    from _peers_venv import ensure_venv

    python = ensure_venv()
    with tempfile.TemporaryDirectory() as d:
        script, data = Path(d) / "worker.py", Path(d) / "calib.npy"
        script.write_text(WORKER)
        np.save(data, calib.astype(np.float32))
        proc = subprocess.run([str(python), str(script), task, str(src), str(data), str(dst)], capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0 or not dst.exists():
        raise RuntimeError(f"{task} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")


def ort_defaults(src: Path, calib: np.ndarray, dst: Path) -> None:
    """ONNX Runtime's quantize_static with nothing but a calibration reader."""
    import onnx
    from onnxruntime.quantization import quantize_static

    name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    it = iter([{name: calib[i:i + 1].astype(np.float32)} for i in range(len(calib))])

    class Reader:
        def get_next(self) -> Any:
            return next(it, None)

    quantize_static(str(src), str(dst), Reader())


def tfmot_tutorial(keras_path: Path, ds: Any, dst: Path) -> None:
    """The TFMOT "Pruning in Keras" tutorial flow on edgekit's trained fp32 model."""
    from edgekit._tf import keras, tf, tfmot
    from edgekit.models.files import load_keras_file
    from edgekit.train.trainer import seed_everything

    seed_everything(0)
    k, sk = keras(), tfmot().sparsity.keras
    model = load_keras_file(keras_path)
    batch, epochs = 128, 2
    end_step = math.ceil(len(ds.x_train) * 0.9 / batch) * epochs  # the tutorial holds out 10 % for validation
    schedule = sk.PolynomialDecay(initial_sparsity=0.50, final_sparsity=0.80, begin_step=0, end_step=end_step)
    pruned = sk.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(optimizer="adam", loss=k.losses.SparseCategoricalCrossentropy(from_logits=False),
                   metrics=["accuracy"])
    pruned.fit(ds.x_train, ds.y_train, batch_size=batch, epochs=epochs, validation_split=0.1,
               callbacks=[sk.UpdatePruningStep()], verbose=0)
    stripped = sk.strip_pruning(pruned)
    conv = tf().lite.TFLiteConverter.from_keras_model(stripped)
    conv.optimizations = [tf().lite.Optimize.DEFAULT]
    dst.write_bytes(conv.convert())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="runs/int8-speed/models")
    ap.add_argument("--out", default="runs/peers")
    ap.add_argument("--train-limit", type=int, default=10000, help="0 = all training images (as int8_speed.py)")
    ap.add_argument("--test-limit", type=int, default=2000, help="0 = all test images")
    ap.add_argument("--calibration-samples", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reuse", action="store_true", help="reuse peer files already in --out")
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"), help="'' to only print")
    args = ap.parse_args(argv)

    from _results import machine_line, update_section
    from _timing import interleaved, ratios, spread, top1
    from edgekit.data.datasets import load_dataset

    models, out = Path(args.models), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (models / "baseline-fp32.onnx").exists():
        ap.error(f"{models}: run benchmarks/int8_speed.py first (it makes the fp32 models)")
    ds = load_dataset("fashion-mnist", train_limit=args.train_limit or None, test_limit=args.test_limit or None)
    calib = ds.calibration(args.calibration_samples).astype(np.float32)
    fp32 = {"onnx": models / "baseline-fp32.onnx", "tflite": models / "baseline-fp32.tflite"}
    peers = {
        "ORT quantize_static (defaults)": ("onnx", out / "ort-defaults.onnx", lambda d: ort_defaults(fp32["onnx"], calib, d)),
        "NNCF nncf.quantize (defaults)": ("onnx", out / "nncf.onnx", lambda d: run_in_peers_venv("nncf", fp32["onnx"], calib, d)),
        "LiteRT Quantizer static_wi8_ai8": ("tflite", out / "litert-quantizer.tflite",
                                            lambda d: run_in_peers_venv("litert", fp32["tflite"], calib, d)),
        "TFMOT pruning tutorial (50→80 %, Optimize.DEFAULT)": ("tflite", out / "tfmot-tutorial.tflite",
                                                               lambda d: tfmot_tutorial(models / "baseline.keras", ds, d)),
    }
    rows: dict[str, tuple[str, Path, str]] = {}  # label → (format, path, fp32 label)
    changes_model = {"TFMOT pruning tutorial (50→80 %, Optimize.DEFAULT)"}  # pruned: agreement not meaningful
    rows["fp32 (ONNX)"] = ("onnx", fp32["onnx"], "fp32 (ONNX)")
    rows["fp32 (TFLite)"] = ("tflite", fp32["tflite"], "fp32 (TFLite)")
    notes = []
    for label, (fmt, path, make) in peers.items():
        if not (args.reuse and path.exists()):
            try:
                make(path)
            except Exception as e:  # noqa: BLE001 - a peer that fails is a row with its reason, not a crash
                notes.append(f"{label}: {e}")
                continue
        rows[label] = (fmt, path, "fp32 (ONNX)" if fmt == "onnx" else "fp32 (TFLite)")
    for label, name in (("edgekit PTQ int8", "baseline-ptq-after"), ("edgekit 80 % pruned + PTQ int8", "pruned80-ptq-after"),
                        ("edgekit structured 50 % + 50 % pruned + PTQ int8", "struct50-pruned50-ptq-after")):
        rows[f"{label} (ONNX)"] = ("onnx", models / f"{name}.onnx", "fp32 (ONNX)")
        tfl = name.replace("-after", "")
        rows[f"{label} (TFLite)"] = ("tflite", models / f"{tfl}.tflite", "fp32 (TFLite)")
        if "pruned" in label:
            changes_model |= {f"{label} (ONNX)", f"{label} (TFLite)"}
    rows = {k: v for k, v in rows.items() if v[1].exists()}

    x_test, y_test = ds.x_test.astype(np.float32), ds.y_test
    preds = {k: top1(p, x_test) for k, (_, p, _) in rows.items()}
    times = interleaved({k: p for k, (_, p, _) in rows.items()}, repeats=args.repeats)
    lines = ["## edgekit's int8 against the peers", "",
             f"Command: `python benchmarks/peers.py {shlex.join(argv if argv is not None else sys.argv[1:])}`", "",
             f"Machine: {machine_line()}.", "",
             f"Same fp32 reference CNN files and the same {len(calib)} calibration images (first training images) for "
             f"every tool; Fashion-MNIST slice ({len(ds.x_train)} training, {len(x_test)} test images). NNCF 3.4 and "
             "LiteRT Quantizer ran in their own venv (runs/.venv-peers). p50 of bare loops, 1 thread, all files "
             f"interleaved in one process (blocks of 10 calls), {args.repeats} repeats; speed-up against the fp32 file of the same format, "
             "median (min–max). Δ pp: test accuracy against that fp32 file; agreement: top-1 agreement with it "
             "(– for rows that prune, i.e. change the model itself; their fidelity to their own fp32 parent is in the "
             "int8-speed section).", "",
             "| tool | format | bytes | accuracy % | Δ pp | agreement % | p50 µs b1 | p50 µs b32 | speed-up b1 | speed-up b32 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, (fmt, path, ref) in rows.items():
        acc = float((preds[label] == y_test).mean())
        ref_acc = float((preds[ref] == y_test).mean())
        agree = "–" if label in changes_model else f"{float((preds[label] == preds[ref]).mean()) * 100:.2f}"
        lines.append(f"| {label} | {fmt} | {path.stat().st_size:,} | {acc * 100:.2f} | {(acc - ref_acc) * 100:+.2f} "
                     f"| {agree} | {statistics.median(times[(label, 1)]):.1f} "
                     f"| {statistics.median(times[(label, 32)]):.0f} | {spread(ratios(times, ref, label, 1))} "
                     f"| {spread(ratios(times, ref, label, 32))} |")
    if notes:
        lines += [""] + [f"- not measured: {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        update_section(SECTION, text, Path(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
