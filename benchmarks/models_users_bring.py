"""The models users bring: each zoo model trained by plain Keras 3, saved as a .keras file, then ``compress --model``.

    python benchmarks/models_users_bring.py [--quick] [--models reference,compact,...] [--epochs 10] [--out DIR]

Pre-trains each model of tests/helpers/zoo.py on data that exists offline (reference and compact: Fashion-MNIST;
resnet8 and mobilenet_v1_025: the generated ``shapes_rgb``; ds_cnn: the generated ``keyword_spectrograms``) in a
child process with ``TF_USE_LEGACY_KERAS=0`` (tests/helpers/brought.py), saves it as a user would, and runs the
default ``edgekit compress --model FILE --data-dir DATA.npz`` on it (default fine-tuning epochs included: edgekit
keeps them only when they help on validation). The table: the model as brought (validation/test, with Keras 3's
own evaluation beside edgekit's), what fine-tuning did, the validation accuracy after each stage, the chosen file's
size, its test accuracy, and batch-1 latency on both runtimes (ONNX Runtime and LiteRT: the fp32 file of the
format against the fastest file inside the budget). ``--quick``: small slices, 2 pre-training epochs, 1 pruning
epoch and short benchmark cells, to show the whole path works. Writes the ``models-users-bring`` section of
benchmarks/RESULTS.md (``--section``: another, e.g. for a run on more images; ``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import machine_line, update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.helpers

DATA = {"reference": "fashion-mnist", "compact": "fashion-mnist", "resnet8": "shapes_rgb",
        "mobilenet_v1_025": "shapes_rgb", "ds_cnn": "keyword_spectrograms"}
RUNTIMES = {"onnx": "ORT", "tflite": "LiteRT"}
SECTION = "models-users-bring"


def write_data(name: str, train: int, test: int, folder: Path) -> Path:
    """The dataset as an .npz (``x_train``, ``y_train``, ``x_test``, ``y_test``, ``labels``), as a user passes it."""
    from tests.helpers import zoo

    path = folder / f"{name}-{train}-{test}.npz"
    if path.is_file():
        return path
    if name == "fashion-mnist":
        from edgekit.data.datasets import DATASETS

        raw = DATASETS["fashion-mnist"]()
        arrays = {"x_train": raw.x_train[:train], "y_train": raw.y_train[:train], "x_test": raw.x_test[:test],
                  "y_test": raw.y_test[:test], "labels": np.array(raw.labels)}
    else:
        make = zoo.shapes_rgb if name == "shapes_rgb" else zoo.keyword_spectrograms
        x, y = make(train + test, seed=1)
        arrays = {"x_train": x[:train], "y_train": y[:train], "x_test": x[train:], "y_test": y[train:]}
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def _p50(row: dict[str, Any]) -> float | None:
    lat = row.get("latency_ms")
    return float(lat["p50"]) if isinstance(lat, dict) and lat.get("p50") is not None else (
        float(lat) if isinstance(lat, (int, float)) else None)


def runtime_speed(report: dict[str, Any], fmt: str) -> str:
    """Batch-1, 1-thread p50 of the fp32 file of ``fmt`` against the fastest file of ``fmt`` inside the budget."""
    arts = {a["id"]: a for a in report["artifacts"]}
    within = {name for name, c in (report.get("budget") or {}).get("checks", {}).items() if c.get("within_budget")}
    p50: dict[str, float] = {}
    for r in report.get("benchmarks", []):
        a = arts.get(r["artifact_id"])
        if (a is None or a["format"] != fmt or r.get("status") != "ok" or r.get("batch_size") != 1
                or r.get("threads") != 1 or _p50(r) is None):
            continue
        p50[a["id"]] = min(p50.get(a["id"], float("inf")), _p50(r))  # type: ignore[arg-type]
    base = next((a for a in arts.values() if a["format"] == fmt and a["parent_id"] == report["baseline_id"]
                 and a["precision"] == "fp32" and a["stage"].startswith("export.")), None)
    if base is None or base["id"] not in p50:
        return "–"
    inside = [aid for aid in p50 if arts[aid]["name"] in within and aid != base["id"]]
    if not inside:
        return f"{p50[base['id']]:.3f} ms (nothing faster inside the budget)"
    best = min(inside, key=p50.__getitem__)
    return (f"{p50[base['id']]:.3f} → {p50[best]:.3f} ms ({p50[base['id']] / p50[best]:.2f}×, "
            f"{arts[best]['name']})")


def summarise(model: str, report: dict[str, Any], keras3: dict[str, float], seconds: float,
              run_dir: Path | None = None) -> dict[str, Any]:
    """One row of the table, and the per-stage validation accuracies."""
    brought = report.get("as_brought") or {}
    fine = brought.get("fine_tuning") or {}
    arts = report["artifacts"]
    chosen = next((a for a in arts if a["id"] == report.get("chosen_id")), None)
    base = next(a for a in arts if a["id"] == report["baseline_id"])
    same = [a for a in arts if a["format"] == (chosen or base)["format"] and a["parent_id"] == base["id"]
            and a["stage"].startswith("export.")]
    fp32_bytes = same[0]["bytes"] if same else None
    stages = " → ".join(f"{a['name']} {a['val_accuracy'] * 100:.1f}" for a in arts if a["val_accuracy"] is not None)
    after = fine.get("val_after")
    pruned = next((a for a in arts if a["stage"].startswith("prune")), None)
    decisions = ((pruned or {}).get("metrics") or {}).get("budget") or {}
    pruning = ", ".join(f"{kind} {d.get('action', '?')}" for kind, d in decisions.items()) or "–"
    return {
        "model": model, "status": report["status"], "seconds": round(seconds),
        "as_brought": f"{brought.get('val_accuracy', 0) * 100:.2f} / {brought.get('accuracy', 0) * 100:.2f}",
        "keras3": f"{keras3.get('val', 0) * 100:.2f} / {keras3.get('test', 0) * 100:.2f}",
        "fine_tuning": f"{fine.get('action', '?')}" + (f" ({after * 100:.2f})" if after is not None else ""),
        "reference": (report.get("budget") or {}).get("reference", {}).get("model", "?"), "pruning": pruning,
        "chosen": chosen["name"] if chosen else "–",
        "kb": f"{chosen['bytes'] / 1024:.1f}" + (f" ({fp32_bytes / chosen['bytes']:.1f}× smaller)"
                                                 if chosen and fp32_bytes else "") if chosen else "–",
        "test": f"{chosen['accuracy'] * 100:.2f}" if chosen and chosen["accuracy"] is not None else "–",
        "ort": runtime_speed(report, "onnx"), "litert": runtime_speed(report, "tflite"), "stages": stages,
        "smaller": smaller_not_chosen(report, chosen),
        "interleaved": interleaved_check(report, chosen, run_dir),
    }


def interleaved_check(report: dict[str, Any], chosen: dict[str, Any] | None, run_dir: Path | None) -> str:
    """The chosen file against the fp32 file of its format, at batch 1 and 1 thread, timed interleaved in this
    process (:func:`_timing.interleaved`, 3 repeats): 'fp32 → chosen µs (speed-up, per-repeat range)'."""
    from _timing import interleaved, ratios, spread

    if chosen is None or run_dir is None:
        return "–"
    base = next((a for a in report["artifacts"] if a["format"] == chosen["format"]
                 and a["parent_id"] == report["baseline_id"] and a["precision"] == "fp32"
                 and a["stage"].startswith("export.")), None)
    if base is None or base["id"] == chosen["id"]:
        return "the fp32 file itself"
    paths = {"fp32": run_dir / base["path"], "chosen": run_dir / chosen["path"]}
    shape = tuple(int(v) for v in report["dataset"]["input_shape"])
    times = interleaved(paths, batches=(1,), repeats=3, shape=shape)
    p50 = {k: sorted(times[(k, 1)])[1] for k in paths}
    return (f"{p50['fp32']:.1f} → {p50['chosen']:.1f} µs ({spread(ratios(times, 'fp32', 'chosen', 1))}×; "
            f"{'not slower' if p50['chosen'] <= p50['fp32'] * 1.05 else 'slower'})")


def smaller_not_chosen(report: dict[str, Any], chosen: dict[str, Any] | None) -> str:
    """Each deployable file smaller than the chosen one, with why it was not chosen (the budget's exclusions)."""
    excluded = (report.get("budget") or {}).get("excluded", {})
    limit = chosen["bytes"] if chosen else float("inf")
    smaller = sorted((a for a in report["artifacts"] if a["name"] in excluded and a.get("bytes")
                      and a["bytes"] < limit), key=lambda a: a["bytes"])
    return "; ".join(f"{a['name']} ({a['bytes'] / 1024:.1f} KB): {excluded[a['name']]}" for a in smaller) or "none"


def render(rows: list[dict[str, Any]], args: argparse.Namespace, models: list[str], train: int, test: int,
           epochs: int, seconds: float) -> str:
    """The RESULTS.md section: the table and each model's per-file validation accuracies."""
    head = ("model", "as brought val / test %", "Keras 3 val / test %", "fine-tuning (val %)", "reference",
            "pruning", "chosen file", "KB", "test %", "ORT batch 1", "LiteRT batch 1", "status")
    keys = ("model", "as_brought", "keras3", "fine_tuning", "reference", "pruning", "chosen", "kb", "test", "ort",
            "litert", "status")
    mode = "--quick " if args.quick else ""
    section = f" --section {args.section}" if args.section != SECTION else ""
    cmd_line = (f"python benchmarks/models_users_bring.py {mode}--models {','.join(models)} "
                f"--train {train} --test {test} --epochs {epochs}{section}")
    body = [f"## Models users bring (`compress --model` on Keras 3 files, {train:,} training images)", "",
            f"`{cmd_line}` — {machine_line()}; {seconds:.0f} s in all"
            + ("" if len(rows) == len(models) else f" (after {len(rows)} of {len(models)} models)") + ".", "",
            f"Each zoo model pre-trained by plain Keras 3 ({epochs} epochs, Adam 1e-3) on {train} training images "
            f"(10 % of them held out for validation by edgekit), {test} test images, then the default "
            "`edgekit compress --model M.keras --data-dir DATA.npz`. As brought: edgekit's evaluation before any "
            "training; Keras 3: the same file evaluated by Keras 3. Fine-tuning is kept only when better on "
            "validation; the reference is the budget's. Latency: p50 at batch 1, 1 thread, the fp32 file of the "
            "format → the fastest file inside the budget.", "",
            "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    body += ["| " + " | ".join(str(r.get(k, "–")) for k in keys) + " |" for r in rows]
    body += ["", "Validation accuracy (%) of every file, in plan order:", ""]
    body += [f"- {r['model']}: {r.get('stages', '–')}" for r in rows]
    body += ["", "The chosen file against the fp32 file of its format, batch 1, 1 thread, timed interleaved in one "
             "process (p50; speed-up median and range over 3 repeats; 'not slower' within 5 %):", ""]
    body += [f"- {r['model']}: {r.get('interleaved', '–')}" for r in rows]
    body += ["", "Files smaller than the chosen one, and why each was not chosen:", ""]
    body += [f"- {r['model']}: {r.get('smaller', '–')}" for r in rows]
    return "\n".join(body)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(DATA), help="comma-separated zoo models (default: all five)")
    p.add_argument("--quick", action="store_true", help="small slices, short training and benchmarks")
    p.add_argument("--train", type=int, default=None, help="training images per dataset (default 12000; quick 1200)")
    p.add_argument("--test", type=int, default=None, help="test images per dataset (default 2000; quick 300)")
    p.add_argument("--epochs", type=int, default=None, help="Keras 3 pre-training epochs (default 10; quick 2)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "models-users-bring")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--section", default=SECTION, help=f"RESULTS.md section to write (default {SECTION}; e.g. "
                   "models-users-bring-20k for a run on 20,000 training images)")
    args = p.parse_args()
    train = args.train or (1200 if args.quick else 12000)
    test = args.test or (300 if args.quick else 2000)
    epochs = args.epochs or (2 if args.quick else 10)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in DATA]
    if unknown:
        p.error(f"unknown model(s): {', '.join(unknown)} (choose from {', '.join(DATA)})")

    from edgekit.data.datasets import load_dataset
    from tests.helpers.brought import train_keras3

    started = time.perf_counter()
    rows = []
    for model in models:
        t0 = time.perf_counter()
        npz = write_data(DATA[model], train, test, args.out / "data")
        ds = load_dataset(data_dir=npz, seed=0)  # the splits compress makes from the same file
        keras_file = args.out / model / f"{model}.keras"
        keras3 = train_keras3(model, {"x_train": ds.x_train, "y_train": ds.y_train, "x_val": ds.x_val,
                                      "y_val": ds.y_val, "x_test": ds.x_test, "y_test": ds.y_test}, keras_file,
                              classes=ds.num_classes, epochs=epochs)
        run = args.out / model / "run"
        cmd = [sys.executable, "-m", "edgekit", "--quiet", "compress", "--model", str(keras_file), "--data-dir",
               str(npz), "--out", str(run), "--force"]
        if args.quick:
            cmd += ["--prune-epochs", "1", "--bench-min-runs", "20", "--bench-min-seconds", "0.1"]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if not (run / "report.json").is_file():
            print(f"{model}: compress failed ({done.returncode}): {done.stderr[-1500:]}", file=sys.stderr)
            rows.append({"model": model, "status": f"failed (exit {done.returncode})"})
            continue
        report = json.loads((run / "report.json").read_text())
        rows.append(summarise(model, report, keras3, time.perf_counter() - t0, run))
        print(json.dumps(rows[-1]), flush=True)
        if not args.no_write:  # after every model: a run cut short still leaves what it measured
            update_section(args.section, render(rows, args, models, train, test, epochs,
                                                        time.perf_counter() - started))
    print(render(rows, args, models, train, test, epochs, time.perf_counter() - started))


if __name__ == "__main__":
    main()
