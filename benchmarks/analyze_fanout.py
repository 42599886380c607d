"""Per-layer sensitivity analysis in process against fanned out over an embedded Ray's warm workers.

    python benchmarks/analyze_fanout.py [--train-limit 3000] [--epochs 6] [--workers 1,2] [--rounds 3]

Trains the compact test model (tests/helpers/models.py) on a seeded Fashion-MNIST slice, then, in rounds that
interleave the modes in alternating order, times ``analyze_dataset`` (default settings: 5 sparsities, 3 filter
fractions, int8 per layer, the protection check) in process and with ``open_executor(workers=N)`` for each N. A Ray
mode is timed in three parts: Ray's start (``open_executor``), the warm workers' start and imports
(``ex.warm`` up to ``ex.wait_warm``: what ``edgekit analyze`` overlaps with loading the model and data), and the
analysis on the warm workers. Checks every fanned-out analysis JSON equals the in-process one (``seconds`` aside).
Writes the ``analyze-fanout`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import machine_line, update_section  # noqa: E402
from _testmodels import test_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _same(a: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in a.items() if k != "seconds"}, sort_keys=True)


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def _fanned(model: Any, ds: Any, workers: int) -> tuple[dict[str, float], dict[str, Any]]:
    from edgekit.analyze.parallel import WORKER_MODULES
    from edgekit.analyze.sensitivity import analyze_dataset
    from edgekit.executor import open_executor

    t0 = time.perf_counter()
    with open_executor(workers=workers) as ex:
        t1 = time.perf_counter()
        ex.warm(WORKER_MODULES)
        ex.wait_warm()
        t2 = time.perf_counter()
        result = analyze_dataset(model, ds, executor=ex)
        t3 = time.perf_counter()
    return {"start": t1 - t0, "warm": t2 - t1, "analysis": t3 - t2}, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-limit", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = p.parse_args()

    from edgekit.analyze.sensitivity import analyze_dataset

    model, ds = test_models().train_compact_cnn("fashion-mnist", train_limit=args.train_limit, epochs=args.epochs)
    modes = ["in process", *(f"embedded Ray, {int(n)} worker(s)" for n in args.workers.split(","))]
    counts = {m: int(m.split(", ")[1].split()[0]) for m in modes[1:]}
    times: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    same: dict[str, bool] = {m: True for m in modes}
    local: dict[str, Any] | None = None
    loads: list[float] = []
    for r in range(args.rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:  # interleaved, alternating order
            if mode == "in process":
                t = time.perf_counter()
                result = analyze_dataset(model, ds)
                took = {"start": 0.0, "warm": 0.0, "analysis": time.perf_counter() - t}
            else:
                took, result = _fanned(model, ds, counts[mode])
            local = local or (result if mode == "in process" else None)
            times[mode].append(took)
            loads.append(os.getloadavg()[0])
            if local is not None and mode != "in process":
                same[mode] = same[mode] and _same(result) == _same(local)
            print(f"round {r + 1} {mode}: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
                  + f" (load {loads[-1]:.1f})", flush=True)
    assert local is not None  # round 1 runs in process first
    base = [t["analysis"] for t in times["in process"]]
    table = ["| where | Ray start s | warm workers s | analysis s | in-process / analysis, per round | same JSON |",
             "|---|---|---|---|---|---|"]
    verdicts = []
    for m in modes:
        analysis = [t["analysis"] for t in times[m]]
        ratio = [b / a for a, b in zip(analysis, base)]
        table.append(f"| {m} | {_cell([t['start'] for t in times[m]])} | {_cell([t['warm'] for t in times[m]])} | "
                     f"{_cell(analysis)} | {statistics.median(ratio):.2f}× ({min(ratio):.2f}–{max(ratio):.2f}) | "
                     f"{'—' if m == 'in process' else 'yes' if same[m] else 'NO'} |")
        if m != "in process":
            verdicts.append(f"{m}: {statistics.median(ratio):.2f}× the in-process speed on the analysis "
                            f"({'no slower' if statistics.median(ratio) >= 1.0 else 'slower'})")
    layers = len(local["layers"])
    body = "\n".join([
        "## Sensitivity analysis fanned out over Ray", "",
        f"Command: `python benchmarks/analyze_fanout.py --train-limit {args.train_limit} --epochs {args.epochs} "
        f"--workers {args.workers} --rounds {args.rounds}`", "",
        f"{machine_line()}; 1-min load average after each measurement {min(loads):.1f}–{max(loads):.1f} (2 cores "
        f"shared with other jobs). Compact test model, {layers} conv/dense layers, {len(ds.y_val)} validation images, "
        f"default analysis settings; one Ray task per layer on warm workers (Ray actors that imported TensorFlow and "
        f"edgekit once; each loads the model once, by content hash). {args.rounds} interleaved round(s) in "
        "alternating order; seconds, median (min–max); the speed ratio is per round (in-process analysis of the same "
        "round over this one).", "",
        *table, "",
        "; ".join(verdicts) + ". Ray's start and the workers' warm-up are paid once per run: `edgekit analyze` and "
        "`compress` start the workers before loading the model and data (or training), so the imports overlap that "
        "work; they are timed apart here, with nothing to overlap. The fanned-out tables are compared with the "
        "in-process one as JSON (only `seconds` differs). Without `--workers`/`--ray-address` the analysis runs in "
        "process and no Ray starts.",
    ])
    if not args.no_write:
        update_section("analyze-fanout", body)
    print(body)


if __name__ == "__main__":
    main()
