"""Closed-loop compression of a compact model: blind defaults against budgeted decisions.

    python benchmarks/closed_loop_compact.py [--train-limit 6000] [--epochs 8] [--budget 1.0] [--model M.keras]

Trains the compact BatchNorm + depthwise-separable + global-pooling test model (tests/helpers/models.py) on a
seeded Fashion-MNIST slice (or loads --model), runs the per-layer sensitivity analysis, then compares
on the same model: magnitude pruning at a blind 80 % against the budgeted per-layer sparsities,
structured removal of a blind 25 % of filters against budgeted per-layer fractions, and full int8
TFLite/ONNX against budgeted mixed precision. Decisions use validation data only; the test column is
reported, never used to choose. Writes the ``closed-loop-compact`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import machine_line, update_section  # noqa: E402
from _testmodels import test_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _acc(scores: np.ndarray, y: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == y).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-limit", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--prune-epochs", type=int, default=2)
    p.add_argument("--budget", type=float, default=1.0)
    p.add_argument("--model", type=Path, default=None, help="a compact .keras model instead of training one")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args()

    from edgekit.analyze.sensitivity import analyze_dataset, SensitivityConfig
    from edgekit.compression.budget import budgeted_magnitude_prune, budgeted_structured, val_accuracy
    from edgekit.compression.mixed import budgeted_int8_onnx, budgeted_int8_tflite
    from edgekit.compression.prune import MagnitudePruneConfig
    from edgekit.data.datasets import load_dataset
    from edgekit.evaluate import predict_file
    from edgekit.export.convert import keras2onnx, keras2tflite
    from edgekit.models.loading import load_user_model
    from edgekit.train.trainer import predict, seed_everything

    started = time.perf_counter()
    seed_everything(0)
    if args.model:
        ds = load_dataset("fashion-mnist", train_limit=args.train_limit, seed=0, val_fraction=0.2)
        model = load_user_model(args.model).model
    else:
        model, ds = test_models().train_compact_cnn("fashion-mnist", train_limit=args.train_limit, epochs=args.epochs)
    ref = val_accuracy(model, ds)
    test_ref = _acc(predict(model, ds.x_test), ds.y_test)
    t0 = time.perf_counter()
    analysis = analyze_dataset(model, ds, SensitivityConfig(budget_pp=args.budget))
    analysis_s = time.perf_counter() - t0

    rows: list[tuple[str, str, float, float, str]] = []  # what, decision, val drop, test drop, note

    def keras_row(what: str, m: Any, decision: Any) -> None:
        val = (ref - val_accuracy(m, ds)) * 100
        test = (test_ref - _acc(predict(m, ds.x_test), ds.y_test)) * 100
        levels = ", ".join(f"{k} {v:g}" for k, v in decision.per_layer.items()) or "none"
        rows.append((what, f"{decision.action}: {levels}", val, test,
                     "budget broken" if val > args.budget else ""))

    mp = MagnitudePruneConfig(epochs=args.prune_epochs)
    m, d = budgeted_magnitude_prune(model, ds, analysis, sparsity=0.8, cfg=mp, reference_val_accuracy=ref)
    keras_row("magnitude, blind 80 %", m, d)
    m, d = budgeted_magnitude_prune(model, ds, analysis, budget_pp=args.budget, cfg=mp, reference_val_accuracy=ref)
    keras_row("magnitude, budgeted", m, d)
    m, d = budgeted_structured(model, ds, analysis, ratio=0.25, epochs=args.prune_epochs, reference_val_accuracy=ref)
    keras_row("structured, blind 25 %", m, d)
    m, d = budgeted_structured(model, ds, analysis, budget_pp=args.budget, epochs=args.prune_epochs,
                               reference_val_accuracy=ref)
    keras_row("structured, budgeted", m, d)

    sizes: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        def file_row(what: str, data: bytes, suffix: str) -> None:
            path = Path(tmp) / f"m{len(sizes)}{suffix}"
            path.write_bytes(data)
            fmt = suffix[1:]
            val = (ref - _acc(predict_file(str(path), fmt, ds.x_val), ds.y_val)) * 100
            test = (test_ref - _acc(predict_file(str(path), fmt, ds.x_test), ds.y_test)) * 100
            sizes.append((what, len(data), val, test))

        file_row("TFLite fp32", keras2tflite(model), ".tflite")
        file_row("TFLite int8 (all layers)", keras2tflite(model, quantization="int8",
                                                          representative=ds.calibration(500)), ".tflite")
        tfl = budgeted_int8_tflite(model, ds, analysis, budget_pp=args.budget, reference_val_accuracy=ref)
        if tfl.data is not None:
            file_row(f"TFLite budgeted ({tfl.precision}, {tfl.action})", tfl.data, ".tflite")
        onnx_path = Path(tmp) / "fp32.onnx"
        onnx_path.write_bytes(keras2onnx(model, ds.input_shape))
        file_row("ONNX fp32", onnx_path.read_bytes(), ".onnx")
        onx = budgeted_int8_onnx(onnx_path, ds, analysis, budget_pp=args.budget, reference_val_accuracy=ref)
        if onx.data is not None:
            file_row(f"ONNX budgeted ({onx.precision}, {onx.action})", onx.data, ".onnx")

    guilty = ", ".join(f"{r['name']} ({r['op']})" for r in analysis["layers"][:3])
    cmd = "python benchmarks/closed_loop_compact.py " + " ".join(sys.argv[1:])
    lines = [
        "## Closed loop on a compact model", "",
        f"`{cmd.strip()}` — {machine_line()}", "",
        f"Compact BN + depthwise-separable + GAP model, Fashion-MNIST first {args.train_limit} training images "
        f"({len(ds.y_train)} train / {len(ds.y_val)} validation), "
        + (f"full test set ({len(ds.y_test)}). " if args.model else f"first {len(ds.y_test)} test images. ")
        + f"Baseline: validation {ref * 100:.2f} %, test {test_ref * 100:.2f} %. Budget {args.budget:g} pp of "
        f"validation accuracy; Δ = drop against the baseline (positive = worse).", "",
        f"Per-layer analysis: {len(analysis['layers'])} layers in {analysis_s:.1f} s; guiltiest first: {guilty}; "
        f"protected from int8: {', '.join(analysis['protected']) or 'none'}; all unprotected layers in simulated "
        f"int8: Δ {analysis['int8_all_drop_pp']:+.2f} pp.", "",
        "| pruning | decision | Δ val pp | Δ test pp | |", "|---|---|---|---|---|",
        *[f"| {w} | {dec} | {v:+.2f} | {t:+.2f} | {n} |" for w, dec, v, t, n in rows], "",
        "| file | bytes | Δ val pp | Δ test pp |", "|---|---|---|---|",
        *[f"| {w} | {b:,} | {v:+.2f} | {t:+.2f} |" for w, b, v, t in sizes], "",
        f"Total {time.perf_counter() - started:.0f} s.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("closed-loop-compact", body)


if __name__ == "__main__":
    main()
