"""int8 against fp32 on the model zoo (BN, depthwise, separable, global pooling, residual), ONNX Runtime and LiteRT.

Each zoo model (``tests/helpers/zoo.py``) is trained briefly on offline data (digits for the 28×28 models, the
generated ``shapes_rgb`` for the 32×32 RGB ones, ``keyword_spectrograms`` for DS-CNN) and written with edgekit's
own code: fp32 ONNX (tf2onnx) and TFLite, int8 TFLite (the TF converter, full integer, float I/O), int8 ONNX
twice: *plain* (``ort_quantize_static`` without the layout pass, ``float_thin_convs=False``: ONNX Runtime's
``quantize_static`` output as is) and *edgekit* (the default settings, with ``ort_fast_qdq``). A model's files are
timed interleaved in one process (benchmarks/_timing.py): p50 at batch 1 and 32, 1 thread, ``--repeats`` rounds;
speed-up = fp32 p50 ÷ int8 p50 of the same round, median (min–max). Agreement: top-1 agreement with the fp32 file
of the same format on the test images.

Evidence written beside the table: the CPU's int8 instructions, ORT's profile (``enable_profiling``) and optimized
graph (``optimized_model_filepath``) of each ONNX file, LiteRT with and without XNNPACK, and a per-layer LiteRT
profile of one model (prefix models: the input up to each layer, fp32 and int8, the differences of their p50s).

    python benchmarks/int8_zoo.py                               # all zoo models, ~10 min on 2 shared cores
    python benchmarks/int8_zoo.py --models compact,resnet8 --repeats 5 --reuse
"""

from __future__ import annotations

import argparse
import collections
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/ helpers (run as a script from the repository root)

SECTION = "int8-zoo"
"""The section on a CPU without int8 dot products (x86 AVX2); :data:`VNNI_SECTION` on one with them."""
VNNI_SECTION = "int8-zoo-vnni"
DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})
GOAL_B32, GOAL_B1 = 1.2, 1.0
GOAL_MODELS = ("compact", "resnet8")
"""The models the goal is checked on (the others are measured as information)."""
INT8_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp")


def data_for(name: str, n_train: int, n_test: int, zoo: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test), float32 in [0, 1], for zoo model ``name``."""
    if name in ("reference", "compact"):
        from edgekit.data.datasets import load_dataset

        ds = load_dataset("digits", train_limit=n_train, test_limit=n_test)
        return ds.x_train, ds.y_train, ds.x_test, ds.y_test
    make = zoo.keyword_spectrograms if name == "ds_cnn" else zoo.shapes_rgb
    x, y = make(n_train + n_test, seed=1)
    x = x.astype(np.float32) / 255.0
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def build(name: str, args: argparse.Namespace, out: Path) -> tuple[dict[str, Path], np.ndarray, np.ndarray]:
    """Train (or reuse) zoo model ``name`` and write its files; returns ({kind: path}, x_test, y_test)."""
    from _testmodels import zoo as load_zoo

    from edgekit._tf import keras
    from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static
    from edgekit.export.convert import keras2onnx, keras2tflite
    from edgekit.train.trainer import seed_everything

    zoo = load_zoo()
    k = keras()
    x, y, x_test, y_test = data_for(name, args.train_images, args.test_images, zoo)
    kpath = out / f"{name}.keras"
    if args.reuse and kpath.exists():
        model = k.models.load_model(kpath)
    else:
        seed_everything(0)
        model = zoo.build(name, k, **({"classes": 4} if name in ("resnet8", "mobilenet_v1_025") else {}))
        model.compile(k.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0)
        model.save(kpath)
    calib = x[: args.calibration_samples]
    shape = tuple(int(d) for d in model.input_shape[1:])
    files = {kind: out / f"{name}-{kind}" for kind in ("fp32.onnx", "fp32.tflite", "int8.tflite", "int8-plain.onnx",
                                                       "int8.onnx")}
    files["fp32.onnx"].write_bytes(keras2onnx(model, shape))
    files["fp32.tflite"].write_bytes(keras2tflite(model))
    files["int8.tflite"].write_bytes(keras2tflite(model, quantization="int8", representative=calib))
    ort_quantize_static(files["fp32.onnx"], files["int8-plain.onnx"], calib, OrtQuantConfig(float_thin_convs=False))
    ort_quantize_static(files["fp32.onnx"], files["int8.onnx"], calib, OrtQuantConfig())
    return files, x_test, y_test


def fused_summary(graph: list[str]) -> str:
    """How the optimized graph runs: int8 kernels, float weight ops, and the Q/DQ left between them."""
    count = collections.Counter(graph)
    int8 = sum(v for op, v in count.items() if op.startswith(("QLinear", "QGemm", "ConvInteger", "MatMulInteger")))
    floats = sum(count[op] for op in ("Conv", "Gemm", "MatMul", "FusedConv", "Add"))
    return (f"{int8} int8 kernels, {floats} float Conv/Gemm/Add, {count['QuantizeLinear']} QuantizeLinear, "
            f"{count['DequantizeLinear']} DequantizeLinear, {count['Transpose']} Transpose")


def litert_builtin_vs_xnnpack(paths: dict[str, Path], shape: tuple[int, ...], batch: int,
                              repeats: int) -> dict[str, float]:
    """p50 (µs) of each file with the default XNNPACK delegate and with LiteRT's builtin kernels only."""
    import time

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    fns = {}
    for name, p in paths.items():
        for label, kind in (("xnnpack", OpResolverType.AUTO),
                            ("builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)):
            it = Interpreter(model_path=str(p), num_threads=1, experimental_op_resolver_type=kind)
            inp = it.get_input_details()[0]
            it.resize_tensor_input(inp["index"], [batch, *shape])
            it.allocate_tensors()
            fns[f"{name} {label}"] = (it, inp["index"])
    x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
    samples: dict[str, list[int]] = {n: [] for n in fns}
    for _ in range(repeats * (20 if batch == 1 else 3)):
        for n, (it, index) in fns.items():
            for _ in range(10):
                t0 = time.perf_counter_ns()
                it.set_tensor(index, x)
                it.invoke()
                samples[n].append(time.perf_counter_ns() - t0)
    return {n: statistics.median(s) / 1e3 for n, s in samples.items()}


def litert_layer_profile(name: str, out: Path, calib: np.ndarray, batch: int,
                         repeats: int) -> list[tuple[str, float, float]]:
    """(layer, fp32 µs, int8 µs) per block of Keras model ``name``: the p50 of the model cut after that layer minus
    the p50 of the model cut after the previous one, fp32 and int8 TFLite, interleaved (LiteRT has no per-op
    profiler in Python; the cut models carry a QUANTIZE/DEQUANTIZE at their ends, so the first and last rows
    include those)."""
    from _timing import interleaved

    from edgekit._tf import keras
    from edgekit.export.convert import keras2tflite

    k = keras()
    model = k.models.load_model(out / f"{name}.keras")
    cuts = [lay.name for lay in model.layers if lay.name.endswith(("relu", "add", "gap", "classifier"))]
    paths: dict[str, Path] = {}
    for cut in cuts:
        sub = k.Model(model.input, model.get_layer(cut).output)
        for q in ("fp32", "int8"):
            p = out / "cuts" / f"{name}-{cut}-{q}.tflite"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(keras2tflite(sub, quantization="int8" if q == "int8" else "none", representative=calib))
            paths[f"{cut} {q}"] = p
    times = interleaved(paths, batches=(batch,), repeats=repeats, shape=tuple(model.input_shape[1:]))
    rows, before = [], {"fp32": 0.0, "int8": 0.0}
    for cut in cuts:
        now = {q: statistics.median(times[(f"{cut} {q}", batch)]) for q in ("fp32", "int8")}
        rows.append((cut, now["fp32"] - before["fp32"], now["int8"] - before["int8"]))
        before = now
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/int8-zoo")
    ap.add_argument("--models", default="reference,compact,resnet8,ds_cnn,mobilenet_v1_025")
    ap.add_argument("--train-images", type=int, default=1200)
    ap.add_argument("--test-images", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--calibration-samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile-layers", default="compact", help="models to profile per layer on LiteRT ('' = none)")
    ap.add_argument("--reuse", action="store_true", help="reuse the trained Keras models in --out (files are remade)")
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"), help="'' to only print")
    args = ap.parse_args(argv)

    from _results import machine_line, update_section
    from _timing import interleaved, ort_profile, ratios, spread, top1

    from edgekit.runtime.host import cpu_flags

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    flags = set(cpu_flags())
    have = [f for f in INT8_CPU_FLAGS if f in flags]
    dot = bool(flags & DOT_PRODUCT_FLAGS)
    title = "int8 against fp32 on the model zoo, ONNX Runtime and LiteRT" + (" (a CPU with VNNI)" if dot else "")
    lines = [f"## {title}", "",
             f"Command: `python benchmarks/int8_zoo.py {shlex.join(argv if argv is not None else sys.argv[1:])}`", "",
             "Zoo models (tests/helpers/zoo.py) trained briefly on offline data (digits; generated shapes_rgb, "
             f"4 classes; keyword_spectrograms), {args.train_images} training / {args.test_images} test images, "
             f"{args.epochs} epochs. p50 of bare `session.run` / `invoke` loops, 1 thread, float32 in → float32 out, "
             f"a model's files interleaved in one process (blocks of 10 calls), {args.repeats} repeats; speed-up = "
             "fp32 p50 ÷ int8 p50 of the same round, median (min–max). *plain*: `ort_quantize_static` without the "
             "layout pass (quantize_static's QDQ as is); *edgekit*: the default int8 ONNX (with `ort_fast_qdq`); "
             "TFLite: the converter's full-integer file. Agreement: top-1 agreement with the fp32 file of the same "
             "format.", "",
             f"CPU int8 instructions: {', '.join(have) or 'none'} (int8 dot products: "
             f"{'yes' if dot else 'no'}).", "",
             "| model | format | int8 file | KB int8 / fp32 | accuracy % int8 / fp32 | agreement % "
             "| p50 µs b1 int8 / fp32 | speed-up b1 | speed-up b32 | goal |",
             "|---|---|---|---|---|---:|---|---:|---:|---|"]
    evidence: list[str] = []
    litert: list[str] = []
    failures: list[str] = []
    xnn_faster: list[str] = []
    xnn_slower: list[str] = []
    models = [m for m in args.models.split(",") if m]
    for name in models:
        files, x_test, y_test = build(name, args, out)
        shape = tuple(x_test.shape[1:])
        times = interleaved(files, repeats=args.repeats, shape=shape)
        preds = {kind: top1(p, x_test) for kind, p in files.items()}
        for kind, label in (("int8-plain.onnx", "plain"), ("int8.onnx", "edgekit"), ("int8.tflite", "converter")):
            fmt = kind.rsplit(".", 1)[1]
            ref = f"fp32.{fmt}"
            b1, b32 = ratios(times, ref, kind, 1), ratios(times, ref, kind, 32)
            ok = statistics.median(b32) >= GOAL_B32 and statistics.median(b1) >= GOAL_B1
            checked = name in GOAL_MODELS and label != "plain"
            if checked and not ok:
                failures.append(f"{name} {fmt}")
            agree = float((preds[kind] == preds[ref]).mean())
            acc = [float((preds[k] == y_test).mean()) * 100 for k in (kind, ref)]
            size = [files[k].stat().st_size / 1024 for k in (kind, ref)]
            lines.append(f"| {name} | {fmt} | {label} | {size[0]:.1f} / {size[1]:.1f} | {acc[0]:.1f} / {acc[1]:.1f} "
                         f"| {agree * 100:.1f} | {statistics.median(times[(kind, 1)]):.0f} / "
                         f"{statistics.median(times[(ref, 1)]):.0f} | {spread(b1)} | {spread(b32)} "
                         f"| {('met' if ok else 'missed') if checked else ('(met)' if ok else '(missed)')} |")
        evidence.append(f"- **{name}**, batch 32:")
        for kind in ("fp32.onnx", "int8-plain.onnx", "int8.onnx"):
            prof, graph = ort_profile(files[kind], 32, shape, runs=60)
            per_op: dict[str, float] = collections.defaultdict(float)
            for op, t in prof:
                per_op[op] += t
            top = sorted(per_op.items(), key=lambda kv: -kv[1])
            evidence.append(f"  - `{kind}`: {sum(per_op.values()):.0f} µs in kernels — "
                            + ", ".join(f"{op} {t:.0f}" for op, t in top)
                            + f"; optimized graph: {fused_summary(graph)}")
        lt = litert_builtin_vs_xnnpack({"fp32": files["fp32.tflite"], "int8": files["int8.tflite"]}, shape, 32,
                                       args.repeats)
        litert.append(f"| {name} | {lt['fp32 xnnpack']:.0f} | {lt['int8 xnnpack']:.0f} | {lt['fp32 builtin']:.0f} "
                      f"| {lt['int8 builtin']:.0f} |")
        (xnn_faster if lt['int8 xnnpack'] < lt['fp32 xnnpack'] else xnn_slower).append(name)
    lines += ["", f"Goal ({', '.join(GOAL_MODELS)}; the edgekit ONNX and converter TFLite rows): int8 ≥ {GOAL_B32}× "
              f"its fp32 sibling at batch 32 and ≥ {GOAL_B1}× at batch 1. "
              + ("Met." if not failures else f"Missed: {', '.join(failures)} (the profiles below say why)."),
              "", "### ONNX Runtime profile", "",
              "Sum of median kernel µs per op type (`enable_profiling`, 60 runs at batch 32, 1 thread) and what the "
              "optimized graph (`optimized_model_filepath`) runs:", "", *evidence,
              "", "### LiteRT: XNNPACK against LiteRT's builtin kernels", "",
              "p50 µs at batch 32, 1 thread, default delegate (XNNPACK) and `BUILTIN_WITHOUT_DEFAULT_DELEGATES`:", "",
              "| model | fp32 XNNPACK | int8 XNNPACK | fp32 builtin | int8 builtin |", "|---|---:|---:|---:|---:|",
              *litert]
    for name in [m for m in args.profile_layers.split(",") if m and m in models]:
        x, *_ = data_for(name, args.calibration_samples, 10, load_zoo_module())
        rows = litert_layer_profile(name, out, x, 32, args.repeats)
        lines += ["", f"LiteRT per layer, **{name}**, batch 32 (XNNPACK; µs added by each block: prefix models' "
                  "p50 differences, so noisy at the µs level; the first and last rows include the QUANTIZE of the "
                  "input and the DEQUANTIZE of the cut):", "", "| up to layer | fp32 µs | int8 µs |", "|---|---:|---:|"]
        lines += [f"| {cut} | {f:.0f} | {i:.0f} |" for cut, f, i in rows]
    lines += ["", vnni_reading(xnn_faster, xnn_slower) if dot else READING]
    text = "\n".join(lines) + f"\n\nMachine: {machine_line()} (shared with other jobs: compare within a table).\n"
    print(text)
    if args.results:
        update_section(VNNI_SECTION if dot else SECTION, text, Path(args.results))
    return 0 if not failures else 1


READING = (
    "Reading. *ONNX, residual (ResNet-8)*: in *plain*, the stem output (read by s1_conv1 and the s1 Add) and the "
    "stage-2 output (read by s3_conv1 and the s3 projection) get one DequantizeLinear per reader in ORT; ORT's "
    "int8 → uint8 rewrite (x86 runs U8 activations × S8 weights) only takes a Q → DQ pair, so those tensors stay "
    "int8 and their readers run as DequantizeLinear → float Conv/Add → QuantizeLinear (the float Conv/Add and the "
    "Q/DQ count in the profile). *edgekit* writes uint8 activations, so everything after the float stem is one "
    "NHWC chain of QLinearConv/QLinearAdd. *ONNX, compact*: on an AVX2 CPU without VNNI the int8 kernels that beat "
    "fp32 are the 1×1 convolutions; the 1-channel stem and the depthwise convolutions are slower in int8 than as "
    "fp32 NCHWc convolutions (*plain*'s QLinearConv time against fp32's Conv), so edgekit keeps the leading ones in "
    "float, and what is left in int8 (the 7×7 1×1 conv, the pooling, the classifier) saves less than the "
    "QuantizeLinear, the NHWC Transposes and the extra nodes cost on a model of ~0.3 M MACs: no int8 layout of it "
    "beats fp32 here, and its int8 record says which layers stayed float for speed. *LiteRT*: XNNPACK's int8 "
    "kernels are slower than its fp32 kernels on every model on this CPU, the reference CNN included (table "
    "above; without VNNI an int8 dot product is widened to 16 bits, no faster than an fp32 FMA), and the converter "
    "has no setting that changes the kernels XNNPACK picks; in the compact model the stem and the 1×1 conv lose "
    "most (per-layer table). The chooser never hands such a file out: an int8 file slower than the fp32 baseline "
    "of its format at batch 1 on the target is excluded (`edgekit.rules.baseline_exclusion`, "
    "tests/test_search.py)."
)


def vnni_reading(xnn_faster: list[str], xnn_slower: list[str]) -> str:
    """The reading on a CPU with int8 dot products; which models XNNPACK runs faster in int8 comes from this run."""
    faster = ", ".join(xnn_faster) or "none of the models"
    slower = ", ".join(xnn_slower) or "none"
    return (
        "Reading (a CPU with int8 dot products). *ONNX, residual (ResNet-8)*: as without VNNI, *plain* leaves the "
        "tensors read by two nodes (a conv and the residual Add, or a conv and the projection) in int8, with one "
        "DequantizeLinear per reader, so those readers run as DequantizeLinear → float Conv/Add → QuantizeLinear; "
        "*edgekit* writes uint8 activations, so everything after the float stem is one NHWC chain of "
        "QLinearConv/QLinearAdd. *ONNX, compact*: dot products do not rescue its thin convolutions: in *plain* the "
        "1-channel stem and the depthwise convolutions run slower as QLinearConv than as fp32 NCHWc Conv (profile), "
        "so edgekit keeps the leading ones in float, and what is left in int8 saves less than the QuantizeLinear, "
        "the NHWC Transposes and the reorders cost on a model of ~0.3 M MACs. *LiteRT*: XNNPACK's int8 kernels "
        f"beat its fp32 kernels at batch 32 on {faster}, and lose on {slower} (XNNPACK table); in the compact model "
        "the 1-channel stem loses most (per-layer table). The chooser never hands out an int8 file slower than the "
        "fp32 baseline of its format at batch 1 on the target (`edgekit.rules.baseline_exclusion`, "
        "tests/test_search.py; the pair is timed again in turns first, `edgekit.bench.retime`).")


def load_zoo_module() -> Any:
    from _testmodels import zoo

    return zoo()


if __name__ == "__main__":
    raise SystemExit(main())
