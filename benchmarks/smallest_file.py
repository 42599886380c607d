"""The smallest file that runs: how far below the fp32 TFLite file the reference CNN goes on full Fashion-MNIST.

The reference CNN trained by edgekit (5 epochs on the full training split, or reused from ``--work``), then a bolder
structured pruning than the default (``--structured``: a fraction of every layer's filters/units, or a fraction per
layer as JSON), fine-tuned ``--prune-epochs`` with part of the targets from the trained model's outputs
(``--distill``) and a cosine rate, optionally magnitude pruning while fine-tuning (``--sparsity``), and every file
edgekit can make of it: fp32 TFLite (sparse-encoded when that is smaller), the converter's int8 (one scale per
output channel, and one per tensor: on a model of a few thousand weights the per-channel tables are a tenth of the
file; both with the classifier head in float, as edgekit's ``ptq-int8`` makes them), and int8 activations with
int4 weights (LiteRT Quantizer, ``ptq-int4``); the unpruned model's int8 and int4
too; and the ONNX files of both models (fp32, edgekit's int8) for the speed goal. Every TFLite file has edgekit's
short tensor names (:mod:`edgekit.export.short_names`) and no metadata (the labels and TFLite Support metadata add
about 2 KB).

For each file: raw and gzip (level 9) bytes, their ratio to the fp32 TFLite file's raw bytes, test accuracy on the
10,000 test images against the trained model's file of the same format, top-1 agreement with it, the certified
drop on the 6,000 certification images (which neither trained nor chose anything here; exact bounds, all files
jointly at 95 %, :func:`edgekit.rules.certify`), p50 at batch 1 and 32 (1 thread, interleaved, ``--repeats``
rounds), and TFLM agreement with LiteRT where TFLM runs it.
Then the same through ``edgekit compress`` twice (:data:`PIPELINE_RUNS`): with the reference CNN's recipe, and
with ``--goal smallest``, which names no layer.
Goals (issue 18): a file ≥ 40× smaller in raw bytes than the fp32 TFLite file that LiteRT runs, within 0.5 pp of
the trained model's test accuracy (certified on held-out training images); gzip ≥ 60×; the fastest file within
0.5 pp ≥ 5× faster than fp32 at batch 32 on ONNX Runtime's CPU EP and on LiteRT.

    python benchmarks/smallest_file.py                          # trains once into --work, ~10 min on 2 cores
    python benchmarks/smallest_file.py --structured 0.5 --sparsity 0.8
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/ helpers (run as a script from the repository root)

SECTION = "smallest-file"
GOAL_RAW, GOAL_GZIP, GOAL_PP, GOAL_SPEED = 40.0, 60.0, 0.5, 5.0
TFLM_IMAGES = 500
RECIPE = HERE.parent / "examples" / "recipes" / "smallest-reference-cnn.yaml"
"""The route's one source: its per-layer fractions (conv1 16 of 32 filters, conv2 16 of 64, dense1 12 of 64 units:
the dense1 kernel, the file's bulk, goes from 1,600 × 64 to 400 × 12), fine-tuning epochs and distillation weight
are this script's defaults, and the pipeline run below takes the same recipe."""


def recipe_defaults() -> tuple[str, int, float]:
    """``--structured`` (JSON), ``--prune-epochs`` and ``--distill`` as the recipe sets them."""
    from edgekit.config import make_config

    structured = make_config(RECIPE).stage_config("prune.structured")
    return json.dumps(structured.per_layer), structured.epochs, structured.distill


def structured_levels(text: str) -> dict[str, float]:
    """``--structured``: one fraction for every prunable layer ({"": f}) or a JSON object of layer → fraction."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise SystemExit(f"--structured: {text!r} is neither a number nor a JSON object") from None
    if isinstance(value, (int, float)):
        return {"": float(value)}
    if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
        raise SystemExit(f"--structured: {text!r} must be a number or a JSON object of layer names to fractions")
    return {str(k): float(v) for k, v in value.items()}


def _tag(levels: dict[str, float]) -> str:
    return "-".join(f"{k or 'all'}{v:g}" for k, v in sorted(levels.items()))


def _pruned(work: Path, model: Any, ds: Any, args: argparse.Namespace) -> Any:
    """Structured pruning fine-tuned with distillation from ``model``, then (``--sparsity``) magnitude pruning."""
    from edgekit._tf import keras
    from edgekit.compression.prune import MagnitudePruneConfig, magnitude_prune
    from edgekit.compression.structured import prune_structured
    from edgekit.train.trainer import FineTunePolicy, FitSettings, fine_tune, seed_everything

    levels = structured_levels(args.structured)
    path = work / (f"pruned-{_tag(levels)}-d{args.distill:g}-e{args.prune_epochs}-m{args.sparsity:g}"
                   f"-e{args.magnitude_epochs}.keras")
    if path.exists():
        return keras().models.load_model(path)
    seed_everything(0)
    small = (prune_structured(model, ratio=levels[""]) if "" in levels
             else prune_structured(model, per_layer=levels)).model
    policy = FineTunePolicy(warmup=0.0, freeze_batchnorm=False, distill=args.distill)
    fine_tune(small, ds.x_train, ds.y_train, FitSettings(epochs=args.prune_epochs, lr_schedule="cosine"), policy,
              teacher=model, label="structured fine-tune")
    pruned = small
    if args.sparsity > 0:
        pruned = magnitude_prune(small, ds.x_train, ds.y_train,
                                 MagnitudePruneConfig(sparsity=args.sparsity, epochs=args.magnitude_epochs))
    pruned.compile(loss="sparse_categorical_crossentropy")
    pruned.save(path)
    return pruned


def _files(model: Any, pruned: Any, ds: Any, sparsity: float) -> dict[str, bytes]:
    from edgekit.compression.litert_quant import quantize_int4, with_live_channels
    from edgekit.compression.mixed import keras2tflite_mixed
    from edgekit.export.convert import keras2tflite, keras2tflite_encoded
    from edgekit.export.metadata import tflite_short_names

    calib = ds.calibration(500)
    fp32 = keras2tflite(model)
    pruned_fp32, _ = keras2tflite_encoded(pruned, sparsity)
    files = {
        "fp32": fp32,
        "int8": keras2tflite_mixed(model, calib, [], float_head=True),
        "int4": quantize_int4(fp32, calib)[0],
        "pruned-fp32": pruned_fp32,
        "pruned-int8": keras2tflite_mixed(pruned, calib, [], float_head=True),
        "pruned-int8-per-tensor": keras2tflite_mixed(pruned, calib, [], per_channel=False, float_head=True),
        "pruned-int4": quantize_int4(keras2tflite(with_live_channels(pruned)), calib)[0],
    }
    return {name: tflite_short_names(data, name)[0] for name, data in files.items()}


def _onnx_files(model: Any, pruned: Any, ds: Any, folder: Path) -> dict[str, Path]:
    """fp32 and edgekit's default int8 ONNX of the trained and the pruned model."""
    from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static
    from edgekit.export.convert import keras2onnx

    calib = ds.calibration(500)
    out = {}
    for name, m in (("fp32", model), ("pruned", pruned)):
        fp32 = folder / f"{name}.onnx"
        fp32.write_bytes(keras2onnx(m, ds.input_shape))
        out[f"{name}.onnx"] = fp32
        int8 = folder / f"{name}-int8.onnx"
        ort_quantize_static(fp32, int8, calib, OrtQuantConfig())
        out[f"{name}-int8.onnx"] = int8
    return out


def _tflm(path: Path, x: np.ndarray, litert_top1: np.ndarray) -> str:
    from edgekit.runtime.tflm import verify_on_tflm

    got = verify_on_tflm(path, x, litert_top1)
    if got["status"] != "ok":
        return f"{got['status']}: {(got['reason'] or '')[:60]}"
    return f"{got['agreement'] * 100:.1f} %"


def measure(paths: dict[str, Path], ds: Any, repeats: int) -> tuple[list[dict[str, Any]], dict[tuple[str, int],
                                                                                         list[float]]]:
    """One row per file, judged against the trained model's file of its format; every file timed in turns."""
    from _timing import interleaved, top1

    from edgekit.rules import certify

    base_bytes = paths["fp32"].stat().st_size
    refs = {".tflite": "fp32", ".onnx": "fp32.onnx"}
    pred = {name: {split: top1(path, getattr(ds, f"x_{split}")) for split in ("test", "cert", "val")}
            for name, path in paths.items()}
    ok = {name: {split: p == getattr(ds, f"y_{split}") for split, p in by.items()} for name, by in pred.items()}
    reference = ok["fp32"]
    selection = {n: (int((reference["val"] & ~ok[n]["val"]).sum()), int((~reference["val"] & ok[n]["val"]).sum()))
                 for n in paths if n not in refs.values()}
    # certification order, decided on the selection (validation) images: inside the goal there first, then smallest
    candidates = sorted(selection, key=lambda n: ((selection[n][0] - selection[n][1]) * 100 / len(ds.y_val) > GOAL_PP,
                                                  paths[n].stat().st_size))
    certs = certify(reference["cert"], {n: ok[n]["cert"] for n in candidates}, candidates, order=candidates,
                    selection=selection, n_selection=len(ds.y_val), budget_pp=GOAL_PP)
    times = interleaved(paths, batches=(1, 32), repeats=repeats, runs={1: 300, 32: 40})
    rows = []
    for name, path in paths.items():
        ref = refs[path.suffix]
        data = path.read_bytes()
        acc, ref_acc = float(ok[name]["test"].mean()), float(ok[ref]["test"].mean())
        packed = len(gzip.compress(data, 9))
        cert = certs.get(name)
        rows.append({"name": name, "format": path.suffix[1:], "ref": ref, "bytes": len(data), "gzip": packed,
                     "ratio": base_bytes / len(data), "gzip_ratio": base_bytes / packed, "accuracy": acc,
                     "delta_pp": (acc - ref_acc) * 100,
                     "agreement": float((pred[name]["test"] == pred[ref]["test"]).mean()),
                     "bound_pp": cert.bound_pp if cert else None,
                     "p50_b1": statistics.median(times[(name, 1)]), "p50_b32": statistics.median(times[(name, 32)]),
                     "tflm": (_tflm(path, ds.x_test[:TFLM_IMAGES], pred[name]["test"][:TFLM_IMAGES])
                              if path.suffix == ".tflite" else "")})
    return rows, times


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


PIPELINE_RUNS = {
    "recipe-run": ["--recipe", str(RECIPE)],
    "goal-run": ["--dataset", "fashion-mnist", "--goal", "smallest"],
}
"""The runs through ``edgekit compress``: the reference CNN's own route (its recipe names its layers) and the
generic goal, which names none."""


def through_pipeline(work: Path, run: str, reuse: bool = False) -> list[str]:
    """One of :data:`PIPELINE_RUNS` through ``edgekit compress`` (metadata included, the run's own training,
    fine-tuning and certification): what the run chose, and each file's size, test accuracy and certificate
    (``reuse``: read the run folder's report.json when there is one)."""
    import json
    import subprocess

    out = work / run
    shown = "edgekit compress " + " ".join(a if a != str(RECIPE) else str(RECIPE.relative_to(HERE.parent))
                                           for a in PIPELINE_RUNS[run])
    if not (reuse and (out / "report.json").is_file()):
        cmd = [sys.executable, "-m", "edgekit", "compress", *PIPELINE_RUNS[run], "--out", str(out), "--force"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            return [f"- Through the pipeline: `{shown}` failed (exit {done.returncode}): "
                    f"{(done.stderr.strip().splitlines() or [''])[-1]}"]
    report = json.loads((out / "report.json").read_text())
    arts = {a["id"]: a for a in report["artifacts"]}
    base = next(a for a in arts.values() if a["name"] == "baseline-tflite")
    checks = report["budget"]["checks"]
    rows = []
    chosen = arts.get(report.get("chosen_id") or "", {})
    for a in sorted(arts.values(), key=lambda a: a["bytes"]):
        cert = checks.get(a["name"], {})
        if a["format"] != "tflite" or a["name"] == "baseline-tflite" or not (cert.get("within_budget") or
                                                                           a is chosen):
            continue
        delta = (a["accuracy"] - base["accuracy"]) * 100
        rows.append(f"{a['name']} {a['bytes']:,} B ({base['bytes'] / a['bytes']:.1f}×, gzip "
                    f"{base['bytes'] / a['gzip_bytes']:.1f}×), test {delta:+.2f} pp, "
                    f"certified ≤ {cert.get('bound_pp', float('nan')):.2f} pp")
    return [f"- Through the pipeline, `{shown}` (status {report['status']}, {report['seconds']:.0f} s; its files "
            f"carry labels and TFLite Support metadata; test against the run's trained model, certificates on its "
            f"certification images against the {report['config'].get('max_accuracy_drop', 1.0):g} pp budget): "
            f"chose **{chosen.get('name', 'none')}**. Its certified TFLite files, smallest first: "
            + "; ".join(rows[:4]) + "."]


def verdicts(rows: list[dict[str, Any]], times: dict[tuple[str, int], list[float]]) -> list[str]:
    """The goals' lines: the smallest raw and gzip files within 0.5 pp on test (with their certificates), and the
    fastest file within 0.5 pp on each runtime at batch 32 against its format's fp32 file."""
    from _timing import ratios, spread

    within = [r for r in rows if r["name"] != r["ref"] and r["delta_pp"] >= -GOAL_PP]
    litert = [r for r in within if r["format"] == "tflite"]
    best = max(litert, key=lambda r: r["ratio"], default=None)
    best_gz = max(litert, key=lambda r: r["gzip_ratio"], default=None)
    if best is None or best_gz is None:
        return [f"- MISSED: no file within {GOAL_PP} pp of the trained model's test accuracy"]

    def certified(r: dict[str, Any]) -> str:
        if r["bound_pp"] is None:
            return "not certified"
        return (f"its certificate bounds the drop at {r['bound_pp']:.2f} pp (95 %): "
                + ("within" if r["bound_pp"] <= GOAL_PP else "so not certified within") + f" {GOAL_PP} pp")

    def met(ratio: float, goal: float) -> str:
        return "MET on test" if ratio >= goal else "MISSED"

    out = [f"- {met(best['ratio'], GOAL_RAW)}: smallest raw file LiteRT runs within {GOAL_PP} pp on test: "
           f"{best['name']}, {best['ratio']:.1f}× smaller than the fp32 TFLite file ({best['delta_pp']:+.2f} pp; goal "
           f"≥ {GOAL_RAW:g}×); {certified(best)}",
           f"- {met(best_gz['gzip_ratio'], GOAL_GZIP)}: smallest gzip within {GOAL_PP} pp on test: "
           f"{best_gz['name']}, {best_gz['gzip_ratio']:.2f}× (fp32 TFLite raw ÷ its gzip; goal ≥ {GOAL_GZIP:g}×); "
           f"{certified(best_gz)}"]
    for fmt, runtime in (("onnx", "ONNX Runtime CPU EP"), ("tflite", "LiteRT (XNNPACK)")):
        mine = [r for r in within if r["format"] == fmt]
        if not mine:
            out.append(f"- MISSED: no {fmt} file within {GOAL_PP} pp on test")
            continue
        fast = min(mine, key=lambda r: r["p50_b32"])
        speed = ratios(times, fast["ref"], fast["name"], 32)
        out.append(f"- {'MET' if statistics.median(speed) >= GOAL_SPEED else 'MISSED'}: fastest within {GOAL_PP} pp "
                   f"on {runtime}: {fast['name']} ({fast['delta_pp']:+.2f} pp) {spread(speed)}× faster than "
                   f"{fast['ref']} at batch 32 (goal ≥ {GOAL_SPEED:g}×)")
    return out


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, command: str, lines: list[str]) -> str:
    from _results import machine_line

    table = ["| file | raw bytes | × smaller (raw) | gzip bytes | × smaller (gzip) | test accuracy | Δ pp | "
             "agreement | certified drop ≤ pp | p50 µs b1 | p50 µs b32 | TFLM agreement with LiteRT |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        bound = "" if r["bound_pp"] is None else f"{r['bound_pp']:.2f}"
        table.append(f"| {r['name']} | {r['bytes']:,} | {r['ratio']:.1f}× | {r['gzip']:,} | {r['gzip_ratio']:.1f}× | "
                     f"{r['accuracy'] * 100:.2f} % | {r['delta_pp']:+.2f} | {r['agreement'] * 100:.1f} % | {bound} | "
                     f"{r['p50_b1']:.1f} | {r['p50_b32']:.1f} | {r['tflm']} |")
    levels = structured_levels(args.structured)
    what = (f"{levels['']:.0%} of every layer's filters/units" if "" in levels else
            ", ".join(f"{k} {v:.0%}" for k, v in levels.items()) + " of the filters/units")
    magnitude = (f", then magnitude pruning to {args.sparsity:.0%} while fine-tuning {args.magnitude_epochs} epochs"
                 if args.sparsity > 0 else "")
    return "\n".join([
        "## The smallest file that runs (reference CNN, full Fashion-MNIST)", "",
        f"Command: `{command}`", "",
        f"Machine: {machine_line()}.", "",
        f"The reference CNN trained by edgekit ({args.epochs} epochs, full training split); pruned-*: structured "
        f"pruning of {what} (L1), fine-tuned {args.prune_epochs} epochs (cosine rate, targets {1 - args.distill:.0%} "
        f"labels and {args.distill:.0%} the trained model's outputs){magnitude}. int8: the TFLite converter's "
        "full-integer PTQ (a scale per output channel; *per-tensor*: one per weight tensor), the classifier head "
        "in float as edgekit's ptq-int8 makes it; int4: int8 activations "
        "with per-channel int4 conv/dense weights (LiteRT Quantizer, edgekit ptq-int4); pruned-fp32 is "
        "sparse-encoded when smaller; `.onnx`: the fp32 ONNX file and edgekit's default int8 ONNX. Every TFLite file "
        "with edgekit's short tensor names, no metadata. Test accuracy and agreement (same top-1) on the 10,000 test "
        "images against the trained model's file of the same format; certified drop: exact 95 % bounds on the 6,000 "
        "certification images (held out of training; nothing here chose on them), all files jointly "
        "(`edgekit.rules.certify`; the error goes first to the files inside 0.5 pp on the validation images, "
        "smallest first). p50: batch 1 and 32, 1 thread, LiteRT (XNNPACK) or ONNX "
        f"Runtime's CPU EP, every file interleaved, {args.repeats} rounds (median). TFLM: agreement with LiteRT on "
        f"the first {TFLM_IMAGES} test images.", "",
        *table, "", *lines,
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/small", help="where the trained and pruned models are kept (reused)")
    ap.add_argument("--epochs", type=int, default=5)
    structured, prune_epochs, distill = recipe_defaults()
    ap.add_argument("--structured", default=structured,
                    help="fraction of every layer's filters/units, or a JSON object of layer → fraction")
    ap.add_argument("--prune-epochs", type=int, default=prune_epochs,
                    help="fine-tuning epochs after structured pruning")
    ap.add_argument("--distill", type=float, default=distill,
                    help="weight of the trained model's outputs in the targets")
    ap.add_argument("--sparsity", type=float, default=0.0, help="magnitude pruning after the structured step (0: none)")
    ap.add_argument("--magnitude-epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-pipeline", action="store_true",
                    help="skip the runs through edgekit compress (the recipe's and --goal smallest)")
    ap.add_argument("--reuse-runs", action="store_true",
                    help="read the runs through edgekit compress from their folders in --work when they exist")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    args = ap.parse_args(argv)
    structured_levels(args.structured)
    from _results import update_section
    from _testmodels import trained_reference_cnn

    from edgekit.data.datasets import load_dataset

    work = Path(args.work)
    folder = work / "files"
    folder.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("fashion-mnist")
    model = trained_reference_cnn(work / "ref.keras", ds, args.epochs)
    pruned = _pruned(work, model, ds, args)
    paths = {}
    for name, data in _files(model, pruned, ds, args.sparsity).items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    paths.update(_onnx_files(model, pruned, ds, folder))
    rows, times = measure(paths, ds, args.repeats)
    command = "python benchmarks/smallest_file.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    smallest = min((r for r in rows if r["format"] == "tflite"), key=lambda r: r["bytes"])
    lines = [*verdicts(rows, times),
             f"- Bytes of the smallest file made: {breakdown(paths[smallest['name']])}",
             f"- Bytes of the pruned per-channel int8 file: {breakdown(paths['pruned-int8'])}",
             f"- Bytes of the pruned per-tensor int8 file: {breakdown(paths['pruned-int8-per-tensor'])}",
             *(line for run in ([] if args.no_pipeline else PIPELINE_RUNS)
               for line in through_pipeline(work, run, args.reuse_runs))]
    body = markdown(rows, args, command.strip(), lines)
    print(body)
    if not args.no_write:
        update_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
