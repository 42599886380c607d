"""``edgekit bench``: benchmark any .onnx/.tflite file(s) on device profiles and write the same report as ``compress``.

Accuracy is measured on the given data (``--dataset``/``--data-dir``), by default on the
dataset recorded in the model's embedded metadata. Every row says the provider that really
ran, its node share, and whether the target was emulated (emulated latency is not device speed).
Several SSH boards run at the same time, one benchmark per board (:func:`edgekit.bench.api.benchmark`).
Exit 1 when a row failed (a board that dropped mid-fleet, say: the other rows are still in the report)
or nothing ran at all; skipped targets alone do not fail the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from edgekit.commands import recorded_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help=".onnx or .tflite file(s)")
    p.add_argument("--target", action="append", default=[], metavar="NAME",
                   help="device profile (repeatable; default: this machine's CPU profile)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help="evaluate on this dataset (default: the one in the model's metadata)")
    src.add_argument("--data-dir", help="evaluate on your data (IDX files, .npz or class folders)")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test samples")
    p.add_argument("--out", help="report folder (default: runs/bench-<timestamp>)")
    p.add_argument("--force", action="store_true", help="replace existing report files in --out")
    p.add_argument("--devices-dir", action="append", default=[], metavar="DIR", help="extra folder of device profiles")
    p.add_argument("--strict", action="store_true",
                   help="fail instead of falling back to the CPU provider (session.disable_cpu_ep_fallback)")
    p.add_argument("--min-runs", type=int, default=200, help="timed runs per cell, at least (default 200)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="seconds per cell, at least (default 1)")
    p.add_argument("--warmup-runs", type=int, default=10, help="untimed runs first (default 10)")


def run(args: argparse.Namespace) -> int:
    from edgekit.bench.api import Timing
    from edgekit.bench.files import benchmark_models, nothing_ran
    from edgekit.console import enable_progress
    timing = Timing(warmup_runs=args.warmup_runs, min_runs=args.min_runs, min_seconds=args.min_seconds)  # checked
    out = Path(args.out) if args.out else Path("runs") / time.strftime("bench-%Y%m%d-%H%M%S")
    enable_progress(not args.quiet)
    report = benchmark_models(
        args.models, targets=args.target, dataset=args.dataset, data_dir=args.data_dir, test_limit=args.test_limit,
        devices_dirs=args.devices_dir, strict=True if args.strict else None,
        timing=timing,
        out=out, force=args.force, command=recorded_command(args))
    _print(report, out)
    nothing = nothing_ran(report["benchmarks"])
    if nothing:
        print(f"edgekit: bench: {nothing}", file=sys.stderr)
        return 1
    failed = [r for r in report["benchmarks"] if r["status"] == "failed"]
    if failed:  # e.g. a board that dropped mid-fleet: its rows failed, the others are complete
        where = ", ".join(dict.fromkeys(r["target"] for r in failed))
        print(f"edgekit: bench: {len(failed)} of {len(report['benchmarks'])} benchmark rows failed ({where}); "
              f"the reasons are in {out / 'report.md'}", file=sys.stderr)
        return 1
    return 0


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _print(report: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="benchmark (emulated latency is not device speed)")
    for col in ("model", "precision", "target", "batch", "threads", "status", "provider", "p50 ms", "p90 ms",
                "per s", "% of peak", "accuracy", "agree vs ref target"):
        table.add_column(col, overflow="fold")
    artifacts = {a["id"]: a for a in report["artifacts"]}
    for r in report["benchmarks"]:
        a = artifacts[r["artifact_id"]]
        lat = r.get("latency_ms") or {}
        emu = " (emulated)" if r.get("emulated") and lat else ""
        status = escape(r["status"] + (f": {r['reason']}" if r.get("reason") else ""))
        agree = r.get("target_agreement") if r.get("reference_target") != r["target"] else None  # vs itself: 100 %
        table.add_row(a["name"], a["precision"], r["target"], str(r["batch_size"]), str(r["threads"]), status,
                      (r.get("provider") or "-").removesuffix("ExecutionProvider"), _fmt(lat.get("p50"), ".3f") + emu,
                      _fmt(lat.get("p90"), ".3f") + emu, _fmt(r.get("throughput_per_s"), ".0f"),
                      _fmt(r.get("percent_of_peak"), ".1f") + emu if r.get("percent_of_peak") is not None
                      else escape(r.get("peak_reason") or "-"),
                      _fmt(r.get("accuracy"), ".4f"),
                      ("reference" if r.get("reference_target") == r["target"] else "-") if agree is None
                      else f"{agree:.4f} vs {r.get('reference_target')}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    console.print(f"report: {out / 'report.json'}, {out / 'report.md'}", markup=False)
