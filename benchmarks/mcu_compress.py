"""The microcontroller target end to end: ``edgekit compress --targets cortex-m4-256k`` on full Fashion-MNIST.

Runs the plain command below (the accuracy-budget search with a Cortex-M4 target: every .tflite
file runs on TensorFlow Lite Micro's real kernels on this host, location ``tflm``), then reads
its report.json (typed, :class:`edgekit.report.model.Report`) and writes RESULTS.md section
"mcu-compress":

* the chosen artifact: TFLM ran it, its top-1 agreement with LiteRT on the test images, the
  measured arena, RAM/flash needs and margins against 256 KB / 1 MB;
* the fit table of every .tflite file of the run, and the Cortex-M4 ``arm-none-eabi-size`` output;
* the run's fp32 .tflite file against ``cortex-m4-64k`` (``edgekit.mcu.fit_table``): it must not fit.

    python benchmarks/mcu_compress.py [--out runs/mcu-compress] [--extra="--test-limit 2000"] [--results PATH]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, machine_line, update_section  # noqa: E402

SECTION = "mcu-compress"
TARGET = "cortex-m4-256k"
SMALL = "cortex-m4-64k"


def _kb(n: int | None, sign: bool = False) -> str:
    return "–" if n is None else (f"{n / 1024:+.1f}" if sign else f"{n / 1024:.1f}")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.2f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/mcu-compress"))
    ap.add_argument("--extra", default="", help="extra compress flags (e.g. '--test-limit 2000' for a quick look)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the RESULTS.md file to update")
    args = ap.parse_args()

    from edgekit.mcu import fit_table
    from edgekit.report.model import Report
    from edgekit.targets import get_target

    cmd = ["edgekit", "compress", "--dataset", "fashion-mnist", "--targets", TARGET, "--max-accuracy-drop", "1.0",
           *shlex.split(args.extra), "--out", str(args.out), "--force"]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgekit", *cmd[1:]], text=True)
    seconds = time.perf_counter() - t0
    report_path = args.out / "report.json"
    if not report_path.is_file():
        print(f"compress wrote no report (exit {proc.returncode})", file=sys.stderr)
        return 1
    report = Report.from_dict(json.loads(report_path.read_text()), str(report_path))
    chosen = report.chosen
    lines = [f"Command: `{shlex.join(cmd)}` (exit {proc.returncode}, {seconds:.0f} s wall, run status "
             f"**{report.status}**). Script: `python benchmarks/mcu_compress.py"
             + (f" --extra {shlex.quote(args.extra)}" if args.extra else "") + "`.", "",
             f"Machine: {machine_line()}. Dataset: {report.dataset.name}, {report.dataset.train_size} train / "
             f"{report.dataset.val_size} validation / {report.dataset.test_size} test images.", "",
             "Every .tflite file ran on TensorFlow Lite Micro's kernels on this host (the `tflite-micro` package, "
             "location `tflm`): no latency is reported, host speed is not the microcontroller's. Arena: measured by "
             "TFLM; runtime RAM/flash: the profile's estimates.", ""]
    row = None
    if chosen is not None:
        row = next((b for b in report.benchmarks if b.artifact_id == chosen.id and b.target == TARGET), None)
    m = row.mcu if row is not None else None
    if chosen is None:
        lines += [f"**No artifact was chosen**: {report.search.reason if report.search else 'no search section'}", ""]
    else:
        acc = f"{chosen.accuracy * 100:.2f} %" if chosen.accuracy is not None else "–"
        base = report.baseline
        base_acc = f"{base.accuracy * 100:.2f} %" if base and base.accuracy is not None else "–"
        lines += [f"Chosen: **{chosen.name}** ({chosen.precision} {chosen.format}, {_kb(chosen.bytes)} KB), test "
                  f"accuracy {acc} (trained fp32 model: {base_acc}).", ""]
        if m is not None:
            lines += [
                f"On {TARGET}: TFLM status **{m.tflm_status}**, row status {row.status if row else '–'}; top-1 "
                f"agreement with LiteRT **{_pct(m.tflm_agreement)}** of {m.tflm_images} test images; TFLM "
                f"accuracy {_pct(row.accuracy if row else None)}; arena **{m.arena_bytes} bytes**; RAM "
                f"{_kb(m.ram_needed_bytes)} of {_kb(m.ram_bytes)} KB (margin {_kb(m.ram_margin_bytes, True)} KB), "
                f"flash {_kb(m.flash_needed_bytes)} of {_kb(m.flash_bytes)} KB (margin "
                f"{_kb(m.flash_margin_bytes, True)} KB): fits **{'yes' if m.fits else 'no'}**.", ""]
    lines += [f"Fit table on {TARGET} (every .tflite file of the run):", "",
              "| artifact | precision | KB | TFLM | agree with LiteRT | arena KB | RAM need KB | RAM margin KB | "
              "flash need KB | flash margin KB | fits | row status / reason |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for b in report.benchmarks:
        if b.target != TARGET or b.mcu is None:
            continue
        a, f = report.artifact(b.artifact_id), b.mcu
        mark = " (chosen)" if chosen is not None and b.artifact_id == chosen.id else ""
        lines.append(f"| {a.name if a else b.artifact_id}{mark} | {a.precision if a else ''} | "
                     f"{_kb(a.bytes if a else None)} | {f.tflm_status} | {_pct(f.tflm_agreement)} | "
                     f"{_kb(f.arena_bytes)} | {_kb(f.ram_needed_bytes)} | {_kb(f.ram_margin_bytes, True)} | "
                     f"{_kb(f.flash_needed_bytes)} | {_kb(f.flash_margin_bytes, True)} | "
                     f"{'yes' if f.fits else 'no' if f.fits is False else '–'} | {b.status} {b.reason} |")
    lines.append("")
    for sec in report.mcu:
        cc = sec.cross_compile
        if cc is None:
            continue
        lines += [f"Cross-compile of the chosen file for {cc.cpu or sec.cpu} (examples/mcu, STUB interpreter): "
                  f"{cc.status}" + (f" ({cc.reason})" if cc.reason else "") + (f", {cc.toolchain}" if cc.toolchain else "")
                  + (f", `MODEL_ARENA_BYTES` = {cc.arena_bytes}" if cc.arena_bytes is not None else "") + "."]
        if cc.size_output:
            lines += ["", "```", cc.size_output, "```"]
        lines.append("")
    fp32 = next((a for a in report.artifacts if a.format == "tflite" and a.precision == "fp32"
                 and a.parent_id == report.baseline_id), None)
    if fp32 is not None and fp32.path:
        small: list[dict[str, Any]] = fit_table(args.out / fp32.path, [get_target(SMALL)])
        for r in small:
            verdict = {True: "fits", False: "**does not fit**", None: "not measured"}[r["fits"]]
            lines += [f"The trained fp32 .tflite ({fp32.name}, {_kb(r['model_bytes'])} KB) on {SMALL}: {verdict} "
                      f"(arena {_kb(r['arena_bytes'])} KB; {r['reason'] or 'within budget'}).", ""]
    update_section(SECTION, "## Microcontroller target: compress --targets cortex-m4-256k\n\n"
                   + "\n".join(lines), args.results)
    ok = m is not None and m.fits and m.tflm_agreement is not None and m.tflm_agreement >= 0.99
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
