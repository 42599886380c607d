"""Per-layer sensitivity analysis in process against fanned out over an embedded Ray.

    python benchmarks/analyze_fanout.py [--train-limit 3000] [--epochs 6] [--workers 1,2]

Trains the compact test model (tests/helpers/models.py) on a seeded Fashion-MNIST slice, then times
``analyze_dataset`` (default settings: 5 sparsities, 3 filter fractions, int8 per layer, the protection check)
in process and with ``open_executor(workers=N)`` for each N, Ray's start included and reported apart, and checks
that every fanned-out analysis JSON equals the in-process one (``seconds`` aside). Writes the ``analyze-fanout``
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-limit", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = p.parse_args()

    from edgekit.analyze.sensitivity import analyze_dataset
    from edgekit.executor import open_executor

    model, ds = test_models().train_compact_cnn("fashion-mnist", train_limit=args.train_limit, epochs=args.epochs)
    started = time.perf_counter()
    local = analyze_dataset(model, ds)
    rows = [("in process", 0.0, time.perf_counter() - started, "—")]
    for n in (int(v) for v in args.workers.split(",")):
        t0 = time.perf_counter()
        with open_executor(workers=n) as ex:
            t1 = time.perf_counter()
            fanned = analyze_dataset(model, ds, executor=ex)
            t2 = time.perf_counter()
        rows.append((f"embedded Ray, {n} worker(s)", t1 - t0, t2 - t1, "yes" if _same(fanned) == _same(local) else "NO"))
    layers = len(local["layers"])
    table = ["| where | Ray start s | analysis s | vs in process (analysis only) | same JSON |", "|---|---|---|---|---|"]
    for where, start, took, same in rows:
        table.append(f"| {where} | {start:.1f} | {took:.1f} | {rows[0][2] / took:.2f}× | {same} |")
    body = "\n".join([
        "## Sensitivity analysis fanned out over Ray", "",
        f"Command: `python benchmarks/analyze_fanout.py --train-limit {args.train_limit} --epochs {args.epochs} "
        f"--workers {args.workers}`", "",
        f"{machine_line()}. Compact test model, {layers} conv/dense layers, {len(ds.y_val)} validation images, "
        "default analysis settings; one Ray task per layer (each worker loads the model once, by content hash).", "",
        *table, "",
        "The fanned-out tables are compared with the in-process one as JSON (only `seconds` differs). Where the "
        "fanned-out analysis is slower than in process, it is because the whole analysis takes seconds here while "
        "every worker pays TensorFlow's import and loads its own copy of the model, on 2 cores shared with the "
        "driver; the fan-out is meant for larger models and clusters (not measured here). Without "
        "`--workers`/`--ray-address` the analysis runs in process and no Ray starts.",
    ])
    if not args.no_write:
        update_section("analyze-fanout", body)
    print(body)


if __name__ == "__main__":
    main()
