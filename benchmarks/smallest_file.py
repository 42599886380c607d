"""The smallest file that runs: how far below the fp32 TFLite file the reference CNN goes on full Fashion-MNIST.

The reference CNN trained by edgekit (5 epochs on the full training split, or reused from ``--work``), then a bolder
structured pruning than the default (``--structured`` of every layer's filters/units, fine-tuned), magnitude
pruning while fine-tuning (``--sparsity``), and every file edgekit can make of it: fp32 TFLite (sparse-encoded when
that is smaller), the converter's int8, and int8 activations with int4 weights (LiteRT Quantizer, ``ptq-int4``);
the unpruned model's int8 and int4 too. Every TFLite file has edgekit's short tensor names
(:mod:`edgekit.export.short_names`) and no metadata (the labels and TFLite Support metadata add about 2 KB).

For each file: raw and gzip (level 9) bytes, their ratio to the fp32 TFLite file's raw bytes, test accuracy on the
10,000 test images in LiteRT against the trained model's, top-1 agreement with the trained model's fp32 TFLite
file, LiteRT p50 (batch 1, 1 thread, interleaved, 3 repeats), and TFLM agreement with LiteRT where TFLM runs it.
Goal (issue 18): a file ≥ 40× smaller in raw bytes than the fp32 TFLite file that LiteRT runs, within 0.5 pp of
the trained model's test accuracy; gzip ≥ 60×.

    python benchmarks/smallest_file.py                          # trains once into --work, ~15 min on 2 cores
    python benchmarks/smallest_file.py --structured 0.6 --sparsity 0.85
"""

from __future__ import annotations

import argparse
import gzip
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/ helpers (run as a script from the repository root)

SECTION = "smallest-file"
GOAL_RAW, GOAL_GZIP, GOAL_PP = 40.0, 60.0, 0.5
TFLM_IMAGES = 500


def _pruned(work: Path, model: Any, ds: Any, structured: float, sparsity: float, epochs: int) -> Any:
    """Structured (``structured`` of every layer's channels, fine-tuned) then magnitude pruning while fine-tuning."""
    from edgekit._tf import keras
    from edgekit.compression.prune import MagnitudePruneConfig, magnitude_prune
    from edgekit.compression.structured import prune_structured
    from edgekit.train.trainer import FitSettings, fit

    path = work / f"pruned-s{structured:g}-m{sparsity:g}-e{epochs}.keras"
    if path.exists():
        return keras().models.load_model(path)
    small = prune_structured(model, ratio=structured).model
    fit(small, ds.x_train, ds.y_train, FitSettings(epochs=epochs, learning_rate=5e-4), label="structured fine-tune")
    pruned = magnitude_prune(small, ds.x_train, ds.y_train, MagnitudePruneConfig(sparsity=sparsity, epochs=epochs))
    pruned.compile(loss="sparse_categorical_crossentropy")
    pruned.save(path)
    return pruned


def _files(model: Any, pruned: Any, ds: Any, sparsity: float) -> dict[str, bytes]:
    from edgekit.compression.litert_quant import quantize_int4, with_live_channels
    from edgekit.export.convert import keras2tflite, keras2tflite_encoded
    from edgekit.export.metadata import tflite_short_names

    calib = ds.calibration(500)
    fp32 = keras2tflite(model)
    pruned_fp32, _ = keras2tflite_encoded(pruned, sparsity)
    files = {
        "fp32": fp32,
        "int8": keras2tflite(model, quantization="int8", representative=calib),
        "int4": quantize_int4(fp32, calib)[0],
        "pruned-fp32": pruned_fp32,
        "pruned-int8": keras2tflite(pruned, quantization="int8", representative=calib),
        "pruned-int4": quantize_int4(keras2tflite(with_live_channels(pruned)), calib)[0],
    }
    return {name: tflite_short_names(data, name)[0] for name, data in files.items()}


def _tflm(path: Path, x: np.ndarray, litert_top1: np.ndarray) -> str:
    from edgekit.runtime.tflm import verify_on_tflm

    got = verify_on_tflm(path, x, litert_top1)
    if got["status"] != "ok":
        return f"{got['status']}: {(got['reason'] or '')[:60]}"
    return f"{got['agreement'] * 100:.1f} %"


def measure(paths: dict[str, Path], ds: Any, repeats: int) -> list[dict[str, Any]]:
    from _timing import interleaved, top1

    base_bytes = paths["fp32"].stat().st_size
    ref_top1 = top1(paths["fp32"], ds.x_test)
    ref_acc = float((ref_top1 == ds.y_test).mean())
    times = interleaved(paths, batches=(1,), repeats=repeats, runs={1: 300})
    rows = []
    for name, path in paths.items():
        data = path.read_bytes()
        pred = top1(path, ds.x_test)
        acc = float((pred == ds.y_test).mean())
        packed = len(gzip.compress(data, 9))
        rows.append({"name": name, "bytes": len(data), "gzip": packed, "ratio": base_bytes / len(data),
                     "gzip_ratio": base_bytes / packed, "accuracy": acc, "delta_pp": (acc - ref_acc) * 100,
                     "agreement": float((pred == ref_top1).mean()),
                     "p50_us": statistics.median(times[(name, 1)]),
                     "tflm": _tflm(path, ds.x_test[:TFLM_IMAGES], pred[:TFLM_IMAGES])})
    return rows


def breakdown(path: Path) -> str:
    """Where a file's bytes go: each weight tensor's buffer, the other buffers, and the rest (flatbuffer tables,
    quantization parameters, signature)."""
    from edgekit.export.tflite_reader import parse_tflite

    data = path.read_bytes()
    model = parse_tflite(data)
    graph = model.subgraphs[0]
    sizes = [(t.name.split("/")[1] if "/" in t.name else t.name, t.dtype, len(model.buffer_bytes(t.buffer)))
             for t in graph.tensors if t.buffer]
    weights = sorted([x for x in sizes if x[1] in ("int4", "int8", "float32") and x[2] > 64], key=lambda x: -x[2])
    other = sum(n for *_, n in sizes) - sum(n for *_, n in weights)
    rest = len(data) - sum(n for *_, n in sizes)
    parts = ", ".join(f"{name} {dtype} {n:,}" for name, dtype, n in weights)
    return f"{path.stem}: {len(data):,} B = weights ({parts}) + biases/shapes {other:,} + tables {rest:,}"


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, command: str, why: list[str]) -> str:
    from _results import machine_line

    table = ["| file | raw bytes | × smaller (raw) | gzip bytes | × smaller (gzip) | test accuracy | Δ pp | "
             "agreement with fp32 | LiteRT p50 µs b1 | TFLM agreement with LiteRT |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        table.append(f"| {r['name']} | {r['bytes']:,} | {r['ratio']:.1f}× | {r['gzip']:,} | {r['gzip_ratio']:.1f}× | "
                     f"{r['accuracy'] * 100:.2f} % | {r['delta_pp']:+.2f} | {r['agreement'] * 100:.1f} % | "
                     f"{r['p50_us']:.1f} | {r['tflm']} |")
    within = [r for r in rows if r["name"] != "fp32" and r["delta_pp"] >= -GOAL_PP]
    best = max(within, key=lambda r: r["ratio"], default=None)
    best_gz = max(within, key=lambda r: r["gzip_ratio"], default=None)
    if best is None or best_gz is None:
        verdict = [f"- MISSED: no file within {GOAL_PP} pp of the trained model's test accuracy"]
    else:
        verdict = [f"- {'MET' if best['ratio'] >= GOAL_RAW else 'MISSED'}: smallest raw file within {GOAL_PP} pp: "
                   f"{best['name']}, {best['ratio']:.1f}× smaller than the fp32 TFLite file "
                   f"({best['delta_pp']:+.2f} pp; goal ≥ {GOAL_RAW:g}×)",
                   f"- {'MET' if best_gz['gzip_ratio'] >= GOAL_GZIP else 'MISSED'}: smallest gzip within {GOAL_PP} pp: "
                   f"{best_gz['name']}, {best_gz['gzip_ratio']:.1f}× (fp32 TFLite raw ÷ its gzip; goal ≥ "
                   f"{GOAL_GZIP:g}×)"]
    return "\n".join([
        "## The smallest file that runs (reference CNN, full Fashion-MNIST)", "",
        f"Command: `{command}`", "",
        f"Machine: {machine_line()}.", "",
        f"The reference CNN trained by edgekit ({args.epochs} epochs, full training split); pruned-*: structured "
        f"pruning of {args.structured:.0%} of every layer's filters/units (L1), fine-tuned {args.prune_epochs} epochs, "
        f"then magnitude pruning to {args.sparsity:.0%} while fine-tuning {args.prune_epochs} epochs. int8: the TFLite "
        "converter's full-integer PTQ; int4: int8 activations with per-channel int4 conv/dense weights (LiteRT "
        "Quantizer, edgekit ptq-int4); pruned-fp32 is sparse-encoded when smaller. Every file with edgekit's short "
        "tensor names, no metadata. Accuracy and agreement: LiteRT on the 10,000 test images; agreement = same top-1 "
        f"as the trained model's fp32 TFLite file. p50: LiteRT, batch 1, 1 thread, interleaved, {args.repeats} "
        f"repeats (median). TFLM: agreement with LiteRT on the first {TFLM_IMAGES} test images.", "",
        *table, "", *verdict, *why,
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/small", help="where the trained and pruned models are kept (reused)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--structured", type=float, default=0.5)
    ap.add_argument("--sparsity", type=float, default=0.8)
    ap.add_argument("--prune-epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    args = ap.parse_args(argv)
    from _results import update_section
    from _testmodels import trained_reference_cnn

    from edgekit.data.datasets import load_dataset

    work = Path(args.work)
    folder = work / f"files-s{args.structured:g}-m{args.sparsity:g}-e{args.prune_epochs}"
    folder.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("fashion-mnist")
    model = trained_reference_cnn(work / "ref.keras", ds, args.epochs)
    pruned = _pruned(work, model, ds, args.structured, args.sparsity, args.prune_epochs)
    paths = {}
    for name, data in _files(model, pruned, ds, args.sparsity).items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    rows = measure(paths, ds, args.repeats)
    command = "python benchmarks/smallest_file.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    why = [f"- Bytes of the smallest file made: {breakdown(paths['pruned-int4'])}",
           f"- Bytes of the unpruned int4 file: {breakdown(paths['int4'])}"]
    body = markdown(rows, args, command.strip(), why)
    print(body)
    if not args.no_write:
        update_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
