"""Ray scaling: the same search candidates in process, and on an embedded Ray with 1 and 2 workers.

Each candidate is one recipe of the ``--max-accuracy-drop`` grid (structured ratio × magnitude sparsity) run as
``edgekit.compress`` with the cache off, so every mode does the same work. Rounds interleave the modes in one
process (the machine is noisy). Reports the wall time of each mode (Ray start-up included, and apart), the
speed-up of 2 workers over 1, and Ray's overhead at 1 worker against in-process (goal <= 1.15x); checks every
mode gives the same artifact ids. Writes section "ray-scaling" of benchmarks/RESULTS.md (not with --no-write).

    python benchmarks/ray_scaling.py [--train-limit 3000] [--rounds 2]
    python benchmarks/ray_scaling.py --train-limit 300 --rounds 1 --candidates 2 --no-write   # a quick check
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402

GRID = [(s, p) for s in (0.0, 0.25, 0.5) for p in (0.0, 0.8)]  # the search's default structured × sparsity grid
GOAL_OVERHEAD = 1.15


def run_candidate(spec: dict[str, Any]) -> dict[str, Any]:
    """One search candidate: train, prune, export and quantize; the artifact ids and validation accuracies."""
    import edgekit
    from edgekit.config import make_config

    cfg = make_config(overrides=spec["config"])
    with tempfile.TemporaryDirectory() as tmp:
        result = edgekit.compress(cfg, Path(tmp) / "run")
    return {a.name: (a.id, round(float(a.metrics.get("val_accuracy") or 0.0), 6)) for a in result.artifacts}


def _specs(train_limit: int, epochs: int) -> list[dict[str, Any]]:
    return [{"name": f"structured{round(s * 100)}-sparsity{round(p * 100)}",
             "config": {"dataset": "fashion-mnist", "train_limit": train_limit, "test_limit": 1000, "epochs": epochs,
                        "prune_epochs": 1, "structured": s, "sparsity": p, "quantization": ("ptq-int8",),
                        "bench": False, "cache": False}} for s, p in GRID]


def _time_mode(mode: str, specs: list[dict[str, Any]]) -> tuple[float, float, list[Any]]:
    """(start-up seconds, map seconds, results) of one mode."""
    from edgekit.executor import open_executor

    start = time.perf_counter()
    workers = {"in-process": 0, "ray-1": 1, "ray-2": 2}[mode]
    with open_executor(workers=workers) as ex:
        ready = time.perf_counter()
        results = ex.map(run_candidate, specs)
        done = time.perf_counter()
    return ready - start, done - ready, results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-limit", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=len(GRID), help="the first N grid cells (quick checks)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    specs = _specs(args.train_limit, args.epochs)[: args.candidates]
    modes = ["in-process", "ray-1", "ray-2"]
    startup: dict[str, list[float]] = {m: [] for m in modes}
    work: dict[str, list[float]] = {m: [] for m in modes}
    outputs: dict[str, Any] = {}
    for r in range(args.rounds):
        order = modes if r % 2 == 0 else modes[::-1]  # interleaved, alternating order
        for mode in order:
            s, w, res = _time_mode(mode, specs)
            startup[mode].append(s)
            work[mode].append(w)
            outputs.setdefault(mode, res)
            print(f"round {r + 1} {mode}: start-up {s:.1f} s, {len(specs)} candidates {w:.1f} s", flush=True)
    same_ids = all({k: v[0] for k, v in o.items()} == {k: v[0] for k, v in outputs["in-process"][i].items()}
                   for mode in modes for i, o in enumerate(outputs[mode]))
    med = {m: statistics.median(work[m]) for m in modes}
    tot = {m: statistics.median([a + b for a, b in zip(startup[m], work[m])]) for m in modes}
    overhead, overhead_total = med["ray-1"] / med["in-process"], tot["ray-1"] / tot["in-process"]
    speedup = med["ray-1"] / med["ray-2"]
    command = "python benchmarks/ray_scaling.py " + shlex.join(sys.argv[1:])
    lines = [
        "## Ray scaling of the search's candidates", "",
        f"Command: `{command.strip()}`", "",
        f"Machine: {machine_line()}. {len(specs)} candidates (of structured {{0, 0.25, 0.5}} × sparsity {{0, 0.8}}, "
        f"int8, cache off) on the first {args.train_limit} Fashion-MNIST images, {args.epochs} epoch(s); "
        f"median of {args.rounds} interleaved round(s).", "",
        "| mode | start-up s | candidates s | total s |", "|---|---|---|---|",
    ]
    for m in modes:
        lines.append(f"| {m} | {statistics.median(startup[m]):.1f} | {med[m]:.1f} | {tot[m]:.1f} |")
    lines += [
        "",
        f"Ray overhead at 1 worker vs in-process: **{overhead:.2f}×** on the candidates, {overhead_total:.2f}× with "
        f"Ray's start-up (goal ≤ {GOAL_OVERHEAD:.2f}×: {'met' if overhead <= GOAL_OVERHEAD else 'not met'}). "
        f"Speed-up of 2 workers over 1: **{speedup:.2f}×** (2 cores, shared). "
        f"Same artifact ids in every mode: {'yes' if same_ids else 'NO'}.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("ray-scaling", body)
        print("\nwrote section ray-scaling of benchmarks/RESULTS.md")
    return 0 if same_ids else 1


if __name__ == "__main__":
    sys.exit(main())
