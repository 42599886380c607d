"""edgekit's benchmark harness against a bare loop on the same file, and "% of peak".

For each model file (the fp32 and int8 files of ``benchmarks/int8_speed.py``), the p50 that
edgekit's runner reports (``run_request``: the code ``edgekit bench`` runs, in-process here) is set
against the p50 of a bare ``session.run`` / ``interpreter.invoke`` loop, both at batch 1 and 32,
1 thread, alternated in one process for 3 repeats. Goal: harness ≤ 1.10× bare at batch 1.
"% of peak" = the file's MACs per image (its audit, as benchmark rows count them) × images/s (bare,
batch 32) ÷ this machine's one-thread GEMM peak of the kernel its precision runs on (edgekit.runtime.peak:
ORT MatMul for fp32, MatMulInteger u8×s8 for int8 and mixed files), measured afresh in this run.

    python benchmarks/int8_speed.py          # makes runs/int8-speed/models first
    python benchmarks/harness_overhead.py [--models runs/int8-speed/models]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/ helpers (run as a script from the repository root)

SECTION = "harness-overhead"
GOAL = 1.10
FILES = ("baseline-fp32.onnx", "baseline-ptq-after.onnx", "struct50-pruned50-fp32.onnx", "struct50-pruned50-ptq-after.onnx",
         "baseline-fp32.tflite", "baseline-ptq.tflite", "struct50-pruned50-fp32.tflite", "struct50-pruned50-ptq.tflite")


def _run_request() -> Any:
    from edgekit.runtime.runner import run_request

    return run_request


def harness_p50_us(path: Path, data: Path, batch: int, runs: int) -> float:
    """The p50 edgekit's runner reports for one cell (1 thread, CPU provider / default LiteRT delegate)."""
    runtime = "onnxruntime" if path.suffix == ".onnx" else "litert"
    req = {"model": str(path), "data": str(data), "runtime": runtime, "providers": ["CPUExecutionProvider"],
           "provider_options": {}, "strict": False, "batch_sizes": [batch], "threads": [1],
           "timing": {"warmup_runs": 20, "min_runs": runs, "min_seconds": 0.0, "max_seconds": 30.0}}
    rows = _run_request()(req)["rows"]
    row = next(r for r in rows if r["status"] == "ok")
    return float(row["latency_ms"]["p50"]) * 1000.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="runs/int8-speed/models")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"), help="'' to only print")
    args = ap.parse_args(argv)

    from _results import machine_line, update_section
    from _timing import p50_us, predictor, spread
    from edgekit.audit import audit_model
    from edgekit.bench.peak import model_macs
    from edgekit.data.datasets import load_dataset
    from edgekit.runtime.peak import SIZES, gemm_peak, kernel_for, measure_peak, percent_of_peak

    models = Path(args.models)
    files = [models / f for f in FILES if (models / f).exists()]
    if not files:
        ap.error(f"no model files in {models}: run benchmarks/int8_speed.py first")
    ds = load_dataset("fashion-mnist", train_limit=1000, test_limit=256)
    runs = {1: 400, 32: 60}
    peak = measure_peak(1)
    cached = gemm_peak(1)  # what edgekit's benchmark rows use on this machine (edgekit's cache)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data.npz"
        np.savez(data, x=ds.x_test.astype(np.float32), y=ds.y_test)
        for path in files:
            res: dict[str, dict[int, list[float]]] = {"harness": {1: [], 32: []}, "bare": {1: [], 32: []}}
            for batch in (1, 32):
                x = np.ascontiguousarray(ds.x_test[:batch].astype(np.float32))
                bare = predictor(path, batch)
                for _ in range(args.repeats):  # alternate: harness, bare, harness, bare, ...
                    res["harness"][batch].append(harness_p50_us(path, data, batch, runs[batch]))
                    res["bare"][batch].append(p50_us(bare, x, runs[batch]))
                del bare
            ratio = {b: [h / r for h, r in zip(res["harness"][b], res["bare"][b])] for b in (1, 32)}
            precision = audit_model(path)["precision"]
            macs, why = model_macs(path)
            if macs is None:
                raise SystemExit(f"{path}: {why}")
            ips = 32 * 1e6 / statistics.median(res["bare"][32])
            kernel = kernel_for(precision)
            rows.append((path.name, f"{precision} ({kernel})", res, ratio, macs, ips,
                         percent_of_peak(macs, ips, peak[kernel])))
    lines = ["## edgekit's harness against a bare loop, and % of peak", "",
             f"Command: `python benchmarks/harness_overhead.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
             "", f"Machine: {machine_line()}.", "",
             "Harness: edgekit's runner (`run_request`, what `edgekit bench` runs), its batch-1/32 p50 at 1 thread; "
             "bare: `session.run` / `set_tensor`+`invoke`+`get_tensor` on the same file and thread count. Alternated "
             f"in one process, {args.repeats} repeats; ratio = harness p50 ÷ bare p50, median (min–max).", "",
             "One-thread GEMM peak on this machine (edgekit.runtime.peak.measure_peak, the fastest of "
             f"{', '.join(f'{n}³' for n in SIZES)}, best call of 3 windows): "
             f"fp32 {peak['fp32'] / 1e9:.1f} GMAC/s (ORT MatMul), int8 {peak['int8'] / 1e9:.1f} GMAC/s (ORT MatMulInteger "
             f"u8×s8); the cached figures edgekit's benchmark rows use here: fp32 {cached['fp32'] / 1e9:.1f}, "
             f"int8 {cached['int8'] / 1e9:.1f} GMAC/s.", "",
             "| file | precision (peak kernel) | harness p50 µs b1 | bare p50 µs b1 | harness ÷ bare b1 | harness ÷ bare b32 "
             "| MACs/image | images/s b32 (bare) | % of peak |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    worst = 0.0
    for name, precision, res, ratio, m, ips, pct in rows:
        worst = max(worst, statistics.median(ratio[1]))
        lines.append(f"| {name} | {precision} | {statistics.median(res['harness'][1]):.1f} | "
                     f"{statistics.median(res['bare'][1]):.1f} | {spread(ratio[1])} | {spread(ratio[32])} | "
                     f"{m:,} | {ips:,.0f} | {pct:.1f} % |")
    lines += ["", f"Goal: harness ≤ {GOAL:.2f}× bare at batch 1 — worst median {worst:.2f}× "
              f"({'met' if worst <= GOAL else 'missed'}). MACs count convolutions and dense layers of each file "
              "(its audit, edgekit.models.flops' rule); a mixed file (int8 with some layers kept in float) is set "
              "against the int8 peak."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        update_section(SECTION, text, Path(args.results))
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
