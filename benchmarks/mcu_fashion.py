"""Microcontroller figures on full Fashion-MNIST: the seed CNN on TensorFlow Lite Micro.

Trains the seed CNN (edgekit.models.reference) on the full training split, converts it to
fp32 and int8 TFLite with edgekit's converter and metadata, then

* runs every test image through TFLM's real kernels (tflite-micro) and LiteRT: top-1
  agreement and both accuracies (``edgekit.runtime.tflm.verify_on_tflm``);
* checks both files against every microcontroller profile (``edgekit.mcu.fit_table``):
  the measured arena + runtime RAM against RAM, model + runtime code against flash;
* cross-compiles examples/mcu around the int8 model for a Cortex-M4 and reports
  ``arm-none-eabi-size`` (``edgekit.export.mcu_build.cross_compile_example``).

Writes benchmarks/RESULTS.md section "mcu-fashion".

    python benchmarks/mcu_fashion.py [--epochs 3] [--test-limit N] [--out runs/mcu-fm]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402

SECTION = "mcu-fashion"


def _litert_top1(path: Path, x: np.ndarray) -> list[int]:
    """LiteRT's top-1 for each image, through edgekit's own inference path."""
    from edgekit.evaluate import predict_file

    return [int(p) for p in predict_file(str(path), "tflite", x).argmax(1)]


def _kb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:.1f}"


def _fit_rows(name: str, rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        verdict = {True: "**fits**", False: "does not fit", None: "not measured"}[r["fits"]]
        out.append(f"| {name} | {r['target']} | {_kb(r['arena_bytes'])} + {_kb(r['runtime_ram_bytes'])} "
                   f"= {_kb(r['ram_needed_bytes'])} of {_kb(r['ram_bytes'])} | {_kb(r['ram_margin_bytes'])} "
                   f"| {_kb(r['model_bytes'])} + {_kb(r['runtime_flash_bytes'])} = {_kb(r['flash_needed_bytes'])} "
                   f"of {_kb(r['flash_bytes'])} | {_kb(r['flash_margin_bytes'])} | {verdict} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--test-limit", type=int, default=None, help="test images (default: all 10000)")
    ap.add_argument("--out", type=Path, default=Path("runs/mcu-fm"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from edgekit.artifact import ModelMeta
    from edgekit.data.datasets import load_dataset
    from edgekit.export.convert import keras2tflite
    from edgekit.export.mcu_build import cross_compile_example, toolchain_unavailable_reason
    from edgekit.export.metadata import embed_metadata
    from edgekit.mcu import fit_table
    from edgekit.models.reference import build_reference_cnn
    from edgekit.runtime.tflm import tflm_version, verify_on_tflm
    from edgekit.targets import load_targets
    from edgekit.train.trainer import FitSettings, fit, seed_everything

    seed_everything(args.seed)
    ds = load_dataset("fashion-mnist", test_limit=args.test_limit, seed=args.seed)
    model = build_reference_cnn(ds.input_shape, ds.num_classes)
    t0 = time.perf_counter()
    fit(model, ds.x_train, ds.y_train, FitSettings(args.epochs), label="seed CNN")
    train_s = time.perf_counter() - t0

    args.out.mkdir(parents=True, exist_ok=True)
    meta = ModelMeta(labels=ds.labels, input_shape=tuple(ds.input_shape), dataset="fashion-mnist")
    paths = {"fp32": args.out / "seed_fp32.tflite", "int8": args.out / "seed_int8.tflite"}
    paths["fp32"].write_bytes(keras2tflite(model))
    paths["int8"].write_bytes(keras2tflite(model, quantization="int8", representative=ds.x_train[:500]))
    for kind, p in paths.items():
        embed_metadata(p, meta, artifact_id=f"mcu-fm-{kind}")

    x, y = ds.x_test, np.asarray(ds.y_test)
    litert = _litert_top1(paths["int8"], x)
    t0 = time.perf_counter()
    tflm = verify_on_tflm(paths["int8"], x, litert)
    tflm_s = time.perf_counter() - t0
    if tflm["status"] != "ok":
        print(f"TFLM did not run the int8 model: {tflm['reason']}", file=sys.stderr)
        return 1
    acc_litert = float(np.mean(np.asarray(litert) == y))
    acc_tflm = float(np.mean(np.asarray(tflm["predictions"]) == y))

    targets = list(load_targets().values())
    fit_lines = _fit_rows("seed CNN fp32", fit_table(paths["fp32"], targets))
    fit_lines += _fit_rows("seed CNN int8", fit_table(paths["int8"], targets))

    why = toolchain_unavailable_reason()
    size_text = f"not built: {why}" if why else ""
    if not why:
        build = cross_compile_example(paths["int8"], cpu="cortex-m4")
        size_text = (f"{build['toolchain']}, `-mcpu=cortex-m4 -mthumb`, newlib nosys specs; examples/mcu with the STUB "
                     f"interpreter (no TFLM library), arena `MODEL_ARENA_BYTES` = {build['arena_bytes']} bytes:\n\n"
                     f"```\n{build['size_output']}\n```\n\n"
                     f"The model's object file puts {build['model']['text']} bytes in flash (the {paths['int8'].stat().st_size}-byte "
                     f"file and its labels); the whole image needs {build['firmware']['flash']} bytes of flash and "
                     f"{build['firmware']['ram']} bytes of static RAM (the arena is in bss).")

    cmd = "python benchmarks/mcu_fashion.py " + shlex.join(sys.argv[1:])
    body = f"""## Microcontrollers: the seed CNN on TensorFlow Lite Micro

Written by `{cmd.strip()}` ({machine_line()}).
The seed CNN trained {args.epochs} epochs on the full Fashion-MNIST training split ({train_s:.0f} s), converted to
fp32 and full-integer int8 TFLite (calibrated on 500 training images) with edgekit metadata.

**TFLM vs LiteRT** (int8, {len(x)} test images, tflite-micro {tflm_version()}, {tflm_s:.0f} s on the host):
top-1 agreement **{tflm['agreement'] * 100:.2f} %**; accuracy {acc_tflm * 100:.2f} % on TFLM, {acc_litert * 100:.2f} % on LiteRT;
unsupported ops: {', '.join(tflm['unsupported_ops']) or 'none'}; measured arena {tflm['arena_bytes']} bytes.

**Budgets** (KB; RAM = measured TFLM arena + the profile's runtime estimate, flash = model file + runtime code
estimate; margins are budget minus need; `edgekit.mcu.fit_table`):

| model | profile | RAM need of budget | RAM margin | flash need of budget | flash margin | verdict |
|---|---|---|---|---|---|---|
{chr(10).join(fit_lines)}

**Cortex-M4 build**: {size_text}
"""
    update_section(SECTION, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
