"""The search's candidates in process, and on an embedded Ray with 1 and 2 warm workers.

Each run is ``edgekit.compress`` with ``--search`` over a structured × sparsity grid (int8, no benchmark) and
``workers`` 0 (the in-process executor: the same plan split, chains run one after another in the driver), 1 or 2,
each on a fresh artifact cache so every run computes everything. The plan's chains (one per candidate subtree,
:mod:`edgekit.fanout`) are the candidates; their ``map`` is timed apart, as are Ray's start (``open_executor``) and
the whole run. Rounds interleave the modes in one process in alternating order (the machine is shared and noisy);
the table gives medians and min–max. Checks every run gives the same artifact ids and file hashes. Writes section
"ray-scaling" of benchmarks/RESULTS.md (not with --no-write).

    python benchmarks/ray_scaling.py [--train-limit 1000] [--rounds 3] [--structured 0,0.25] [--sparsity 0,0.8]
    python benchmarks/ray_scaling.py --train-limit 300 --rounds 1 --structured 0 --sparsity 0 --no-write  # quick
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402

GOAL_OVERHEAD = 1.15
MODES = {"in-process": 0, "ray-1": 1, "ray-2": 2}


class Clock:
    """Wall seconds of Ray's start, the chains' map and the warm-pool wait inside one run (wrapping edgekit's calls)."""

    def __init__(self) -> None:
        self.start = self.chains = 0.0

    def install(self) -> None:
        import edgekit.fanout as fanout
        from edgekit.executor import Executor

        opener, mapper = fanout.open_executor, Executor.map

        def open_timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            ex = opener(*a, **k)
            self.start += time.perf_counter() - t
            return ex

        def map_timed(ex: Any, fn: Callable[..., Any], items: Any, **k: Any) -> Any:
            t = time.perf_counter()
            out = mapper(ex, fn, items, **k)
            if fn is fanout.run_chain:
                self.chains += time.perf_counter() - t
            return out

        fanout.open_executor = open_timed
        Executor.map = map_timed  # type: ignore[method-assign]


def _run(mode: str, settings: dict[str, Any], clock: Clock) -> tuple[dict[str, float], dict[str, Any]]:
    """One search run in ``mode``: its timings and {artifact name: (id, file sha256)}."""
    import edgekit
    from edgekit.config import CompressConfig
    from edgekit.fsutil import sha256_file

    clock.start = clock.chains = 0.0
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        os.environ["EDGEKIT_CACHE_DIR"] = str(Path(tmp) / "cache")  # a fresh cache: every run computes everything
        t = time.perf_counter()
        result = edgekit.compress(CompressConfig(**settings, workers=MODES[mode]), Path(tmp) / "run")
        total = time.perf_counter() - t
        files = {a.name: (a.id, sha256_file(a.path)) for a in result.artifacts}
    return {"start": clock.start, "chains": clock.chains, "total": total}, files


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-limit", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--structured", default="0,0.25", help="the search's structured ratios")
    ap.add_argument("--sparsity", default="0,0.8", help="the search's magnitude sparsities")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    structured = tuple(float(v) for v in args.structured.split(","))
    sparsity = tuple(float(v) for v in args.sparsity.split(","))
    settings = {"dataset": "fashion-mnist", "train_limit": args.train_limit, "test_limit": 500, "epochs": args.epochs,
                "prune_epochs": 1, "search": True, "search_structured": structured, "search_sparsity": sparsity,
                "search_quantization": ("ptq-int8",), "bench": False}
    clock = Clock()
    clock.install()
    times: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    files: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    loads: list[float] = []
    modes = list(MODES)
    for r in range(args.rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:  # interleaved, alternating order
            took, made = _run(mode, settings, clock)
            times[mode].append(took)
            files[mode].append(made)
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1} {mode}: Ray start {took['start']:.1f} s, chains {took['chains']:.1f} s, "
                  f"run {took['total']:.1f} s (load {loads[-1]:.1f})", flush=True)
    reference = files["in-process"][0]
    same = all(f == reference for runs in files.values() for f in runs)
    chains = {m: [t["chains"] for t in times[m]] for m in MODES}
    total = {m: [t["total"] for t in times[m]] for m in MODES}
    # per round: ray-1 over in-process of the same round (both measured under that round's load)
    ratio = [a / b for a, b in zip(chains["ray-1"], chains["in-process"])]
    ratio_total = [a / b for a, b in zip(total["ray-1"], total["in-process"])]
    speedup = [a / b for a, b in zip(chains["ray-1"], chains["ray-2"])]
    med = statistics.median(ratio)
    command = "python benchmarks/ray_scaling.py " + shlex.join(sys.argv[1:])
    lines = [
        "## Ray scaling of the search's candidates", "",
        f"Command: `{command.strip()}`", "",
        f"Machine: {machine_line()}; 1-min load average after each run {min(loads):.1f}–{max(loads):.1f} "
        f"(2 cores shared with other jobs). `edgekit.compress` with `--search` (structured {set(structured)} × "
        f"sparsity {set(sparsity)}, int8, no benchmark) on the first {args.train_limit} Fashion-MNIST images, "
        f"{args.epochs} epoch(s), a fresh artifact cache per run; {args.rounds} interleaved round(s) in alternating "
        "order. *Candidates*: the plan's chains fanned out (`ex.map(run_chain, ...)`); *Ray start*: "
        "`open_executor`; *run*: the whole compress (training, chains, evaluation, report). Seconds, median "
        "(min–max).", "",
        "| mode | Ray start s | candidates s | run s |", "|---|---|---|---|",
    ]
    for m in MODES:
        lines.append(f"| {m} | {_cell([t['start'] for t in times[m]])} | {_cell(chains[m])} | {_cell(total[m])} |")
    lines += [
        "",
        f"Ray at 1 worker against in process, per round: **{med:.2f}×** on the candidates "
        f"({min(ratio):.2f}–{max(ratio):.2f}), {statistics.median(ratio_total):.2f}× "
        f"({min(ratio_total):.2f}–{max(ratio_total):.2f}) on the whole run with Ray's start "
        f"(goal ≤ {GOAL_OVERHEAD:.2f}× on the candidates: {'met' if med <= GOAL_OVERHEAD else 'not met'}). "
        f"Speed-up of 2 workers over 1 on the candidates: **{statistics.median(speedup):.2f}×** "
        f"({min(speedup):.2f}–{max(speedup):.2f}). "
        f"Same artifact ids and file hashes in every run: {'yes' if same else 'NO'}.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("ray-scaling", body)
        print("\nwrote section ray-scaling of benchmarks/RESULTS.md")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
