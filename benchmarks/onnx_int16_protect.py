"""ONNX mixed precision: protect the guiltiest layers in float, or with 16-bit activations and int8 weights.

    python benchmarks/onnx_int16_protect.py [--train-limit 3000] [--epochs 6] [--protect 2]

Trains the compact BatchNorm + depthwise-separable test model (tests/helpers/models.py) on a seeded
Fashion-MNIST slice, analyses it (int8 sensitivity only, validation data) and protects the ``--protect``
guiltiest layers that the plain int8 file runs in int8, two ways (edgekit.compression.mixed.budgeted_int8_onnx):
``OrtQuantConfig(protect_with="float")`` (no Q/DQ on their nodes) and ``protect_with="int16"`` (16-bit
activations, int8 weights, ORT's com.microsoft Q/DQ). Then bytes, validation and test accuracy, and batch-1
and batch-32 p50 on ONNX Runtime's CPU EP (1 thread, interleaved in one process, 3 repeats) of fp32, plain
int8 and both protected files. Writes the ``onnx-int16-protect`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py, _timing.py
from _results import machine_line, update_section  # noqa: E402
from _testmodels import test_models  # noqa: E402
from _timing import interleaved, spread, top1  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-limit", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--protect", type=int, default=2, help="how many of the guiltiest int8 layers to protect")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = p.parse_args()

    from edgekit.analyze.decide import quant_guilt
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.compression.budget import val_accuracy
    from edgekit.compression.mixed import budgeted_int8_onnx
    from edgekit.compression.quantize import OrtQuantConfig
    from edgekit.export.convert import keras2onnx

    model, ds = test_models().train_compact_cnn("fashion-mnist", train_limit=args.train_limit, epochs=args.epochs)
    analysis = analyze_dataset(model, ds, SensitivityConfig(sparsities=(), structured=()))
    ref = val_accuracy(model, ds)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"fp32": Path(tmp) / "fp32.onnx"}
        files["fp32"].write_bytes(keras2onnx(model, ds.input_shape))
        bare = {**analysis, "layers": [{**r, "protected": False} for r in analysis["layers"]]}
        plain = budgeted_int8_onnx(files["fp32"], ds, bare, reference_val_accuracy=ref, budget_pp=100.0,
                                   max_attempts=1)
        in_int8 = {r["name"] for r in plain.layers if r["precision"] in ("int8", "mixed")}  # some weight node in int8
        guilty = sorted((r for r in analysis["layers"] if r["name"] in in_int8), key=quant_guilt, reverse=True)
        chosen = [r["name"] for r in guilty[: args.protect]]
        forced = {**analysis, "layers": [{**r, "protected": r["name"] in chosen,
                                          "int8_reason": "one of the guiltiest int8 layers (benchmark)"}
                                         for r in analysis["layers"]]}
        results = {"int8": plain}
        for how in ("float", "int16"):
            results[f"protected-{how}"] = budgeted_int8_onnx(
                files["fp32"], ds, forced, reference_val_accuracy=ref, budget_pp=100.0, max_attempts=1,
                cfg=OrtQuantConfig(protect_with=how))
        for name, r in results.items():
            files[name] = Path(tmp) / f"{name}.onnx"
            files[name].write_bytes(r.data or b"")
        times = interleaved(files)
        test = {name: float((top1(path, ds.x_test) == ds.y_test).mean()) for name, path in files.items()}
        val = {name: float((top1(path, ds.x_val) == ds.y_val).mean()) for name, path in files.items()}
        sizes = {name: path.stat().st_size for name, path in files.items()}

    b1 = {n: statistics.median(times[(n, 1)]) for n in files}
    b32 = {n: statistics.median(times[(n, 32)]) for n in files}
    rows = ["| file | bytes | val acc | test acc | b1 p50 µs | b32 p50 µs | b1 vs fp32 | b32 vs fp32 | protected layers got |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name in files:
        got = "" if name not in results else ", ".join(
            f"{r['name']}: {r['precision']}" for r in results[name].layers if r["name"] in chosen)
        rows.append(f"| {name} | {sizes[name]:,} | {val[name] * 100:.2f} % | {test[name] * 100:.2f} % | {b1[name]:.1f} "
                    f"| {b32[name]:.1f} | {spread([a / b for a, b in zip(times[('fp32', 1)], times[(name, 1)])])}× "
                    f"| {spread([a / b for a, b in zip(times[('fp32', 32)], times[(name, 32)])])}× | {got} |")
    i16, f = "protected-int16", "protected-float"
    not_slower = b1[i16] <= b1[f] and b32[i16] <= b32[f]
    verdict = (f"16-bit activations against float protection: {sizes[i16] / sizes[f]:.2f}× the bytes, "
               f"{(val[i16] - val[f]) * 100:+.2f} pp validation accuracy, {b1[f] / b1[i16]:.2f}× the speed at batch 1 "
               f"and {b32[f] / b32[i16]:.2f}× at batch 32: {'not slower' if not_slower else 'slower'} "
               f"(the chooser's rule: smaller and not slower)")
    body = "\n".join([
        "## ONNX mixed precision: protected layers in float vs 16-bit activations", "",
        f"Command: `python benchmarks/onnx_int16_protect.py --train-limit {args.train_limit} --epochs {args.epochs} "
        f"--protect {args.protect}`", "",
        f"{machine_line()}. Compact test model on a Fashion-MNIST slice ({args.train_limit} training images, "
        f"{len(ds.y_val)} validation, {len(ds.y_test)} test); protected: {', '.join(chosen) or 'none'} (the guiltiest "
        "layers the plain int8 file runs (partly) in int8, by the analysis' int8 drop). ONNX Runtime CPU EP, 1 thread, "
        "p50 of 3 interleaved repeats; speed-ups: median (min–max) over repeats.", "",
        *rows, "",
        f"{verdict}. Float protection stays the default (`OrtQuantConfig.protect_with`). ORT's CPU EP fuses no "
        "16-bit QDQ node into an integer kernel (its optimized graph, `SessionOptions.optimized_model_filepath`): "
        "a 16-bit-activation Conv runs as DequantizeLinear of its int8 weights at every call → float Conv → 16-bit "
        "QuantizeLinear/DequantizeLinear, a MatMul as MatMulNBits (int8 weights, float activations) between them. "
        "The file is smaller (int8 weights) but the compute is float plus the extra Q/DQ.",
    ])
    if args.no_write:
        print(body)
    else:
        update_section("onnx-int16-protect", body)
        print(body)


if __name__ == "__main__":
    main()
