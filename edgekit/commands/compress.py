"""``edgekit compress``: the whole pipeline from the command line."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


# flag → (config key, type, help); the one table of compress flags. Every flag defaults to
# "not given" so that a --recipe's value stands unless the flag overrides it.
FLAGS: list[tuple[str, str, Any, str]] = [
    ("--dataset", "dataset", str, "mnist | fashion-mnist | digits (default: mnist, or digits when MNIST is unavailable)"),
    ("--data-dir", "data_dir", str, "your data: IDX files, an .npz (x_train, y_train, x_test, y_test) or class folders"),
    ("--image-size", "image_size", int, "image folders: resize to this square size (default 28)"),
    ("--color", "color", str, "image folders: grayscale | rgb"),
    ("--train-limit", "train_limit", int, "train on the first N training samples"),
    ("--test-limit", "test_limit", int, "evaluate on the first N test samples (default: all)"),
    ("--seed", "seed", int, "random seed (default 0)"),
    ("--epochs", "epochs", int, "training epochs (default 5)"),
    ("--batch-size", "batch_size", int, "batch size (default 64)"),
    ("--learning-rate", "learning_rate", float, "Adam learning rate (default 1e-3)"),
    ("--model", "model", str, "fine-tune this Keras model (.keras, .h5, SavedModel; Keras 3 accepted)"),
    ("--structured", "structured", float, "remove this fraction of filters/units per layer (default 0 = off)"),
    ("--structured-criterion", "structured_criterion", str, "l1 | l2 | bn_scale"),
    ("--mac-budget", "mac_budget", float, "structured pruning down to this fraction of MACs"),
    ("--sparsity", "sparsity", float, "magnitude-pruning sparsity in [0, 1) (default 0.8; 0 = off)"),
    ("--sparsity-pattern", "sparsity_pattern", str, "N:M sparsity such as 2:4"),
    ("--prune-schedule", "prune_schedule", str, "polynomial | constant"),
    ("--prune-epochs", "prune_epochs", int, "fine-tuning epochs per pruning stage (default 3)"),
    ("--quantization", "quantization", _csv, "MODE[,MODE...]: ptq-int8, ptq-float16, ptq-dynamic, qat, pqat (default ptq-int8)"),
    ("--calibration", "calibration", str, "ONNX calibration: minmax | entropy | percentile"),
    ("--calibration-samples", "calibration_samples", int, "training images used for calibration (default 500)"),
    ("--preset", "preset", str, "ONNX quantization preset: avx2 | avx512_vnni | arm64 | tensorrt"),
    ("--qat-epochs", "qat_epochs", int, "quantization-aware training epochs (default 1)"),
    ("--targets", "targets", _csv, "device profiles to benchmark on, comma-separated (default: this CPU)"),
    ("--target", "target", str, "the device profile the search's latency target refers to"),
    ("--max-accuracy-drop", "max_accuracy_drop", float, "search recipes within this validation-accuracy drop (pp)"),
    ("--latency-target-ms", "latency_target_ms", float, "search: p50 latency goal at batch 1, 1 thread"),
    ("--bench-min-runs", "bench_min_runs", int, "timed runs per benchmark cell, at least (default 200)"),
    ("--bench-min-seconds", "bench_min_seconds", float, "seconds per benchmark cell, at least (default 1)"),
]
SWITCHES: list[tuple[str, str, Any, str]] = [
    ("--augment", "augment", True, "augment training images (small shifts, rotations, zoom)"),
    ("--trust-model", "trust_model", True, "allow Lambda layers / custom code when loading --model"),
    ("--int8-io", "int8_io", True, "TFLite int8: integer model input/output"),
    ("--no-bench", "bench", False, "skip the benchmark"),
    ("--no-cache", "cache", False, "do not reuse cached stage outputs"),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run folder (default: runs/<timestamp>)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--recipe", help="YAML recipe with the same keys as these flags")
    p.add_argument("--devices-dir", action="append", default=None, help="extra folder of device profiles (repeatable)")
    for flag, key, typ, help_text in FLAGS:
        p.add_argument(flag, dest=key, type=typ, default=None, help=help_text)
    for flag, key, value, help_text in SWITCHES:
        p.add_argument(flag, dest=key, action="store_const", const=value, default=None, help=help_text)


def run(args: argparse.Namespace) -> int:
    from edgekit.config import make_config
    from edgekit.console import enable_progress
    from edgekit.pipeline import compress

    overrides = {key: getattr(args, key) for _, key, _, _ in FLAGS + SWITCHES if getattr(args, key) is not None}
    if args.devices_dir:
        overrides["devices_dir"] = tuple(args.devices_dir)
    cfg = make_config(args.recipe, overrides)
    enable_progress(not args.quiet)
    command = "edgekit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = compress(cfg, args.out, force=args.force, command=command)
    if not args.quiet:
        from edgekit.report.markdown import render_table

        print(render_table(result.report))
        print(f"\nwrote {result.out}/report.md, report.json, report.html and models/ ({result.report['status']})")
    for problem in result.report.get("problems", []):
        print(f"edgekit: {problem}", file=sys.stderr)
    return 0 if result.ok else 1
