"""``edgekit bench``: benchmark any .onnx/.tflite file(s) on device profiles and write the same report as ``compress``.

Accuracy is measured on the given data (``--dataset``/``--data-dir``), by default on the
dataset recorded in the model's embedded metadata. Every row says the provider that really
ran, its node share, and whether the target was emulated (emulated latency is not device speed).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

HELP = "benchmark an .onnx or .tflite file on one or more targets"


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


def _validate(args: argparse.Namespace) -> tuple[list[Path], Path]:
    from edgekit.artifact import format_of
    from edgekit.errors import OutputExistsError, UsageError

    paths = [Path(m) for m in args.models]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such model file")
        if format_of(path) not in ("onnx", "tflite"):
            raise UsageError(f"{path}: edgekit bench runs .onnx and .tflite files (export a Keras model first)")
    if args.test_limit is not None and args.test_limit < 1:
        raise UsageError(f"--test-limit: must be >= 1, got {args.test_limit}")
    if args.min_runs < 1 or args.min_seconds < 0 or args.warmup_runs < 0:
        raise UsageError("--min-runs must be >= 1, --min-seconds and --warmup-runs >= 0")
    out = Path(args.out) if args.out else Path("runs") / time.strftime("bench-%Y%m%d-%H%M%S")
    if not args.force and (out / "report.json").exists():
        raise OutputExistsError(f"{out / 'report.json'}: already exists (use --force to replace it)")
    return paths, out


def _metadata(path: Path) -> Any:
    try:
        from edgekit.export.metadata import read_metadata
    except ImportError:  # metadata support not built: fall back to --dataset
        return None
    return read_metadata(path)


def _dataset_name(paths: list[Path], metas: dict[Path, Any]) -> str:
    from edgekit.errors import UsageError

    names = {p: m.dataset for p, m in metas.items() if m is not None and m.dataset}
    if not names:
        raise UsageError(f"{paths[0]}: no dataset recorded in the model's metadata; pass --dataset or --data-dir")
    if len(set(names.values())) > 1:
        detail = ", ".join(f"{p.name}: {n}" for p, n in names.items())
        raise UsageError(f"the models record different datasets ({detail}); pass --dataset or --data-dir")
    return next(iter(names.values()))


def _artifact(path: Path, meta: Any) -> tuple[Any, dict[str, Any] | None]:
    from edgekit.artifact import PRECISIONS, Artifact, format_of
    from edgekit.fsutil import sha256_file

    try:
        from edgekit.audit import audit_model

        audit: dict[str, Any] | None = audit_model(path)
    except ImportError:
        audit = None
    precision = (audit or {}).get("precision")
    art = Artifact(id=sha256_file(path)[:12], stage="external", format=format_of(path),
                   precision=precision if precision in PRECISIONS else "fp32", path=path.resolve(), parent_id=None,
                   meta=meta, name=path.stem)
    return art, audit


def run(args: argparse.Namespace) -> int:
    from edgekit.bench.api import Timing, benchmark
    from edgekit.console import enable_progress
    from edgekit.data.datasets import load_dataset
    from edgekit.errors import UsageError
    from edgekit.report.build import build_report
    from edgekit.report.write import write_reports
    from edgekit.targets import default_target_name, get_target

    start = time.perf_counter()
    paths, out = _validate(args)
    targets = [get_target(n, args.devices_dir) for n in dict.fromkeys(args.target or [default_target_name()])]
    metas = {p: _metadata(p) for p in paths}
    name = args.dataset or (None if args.data_dir else _dataset_name(paths, metas))
    ds = load_dataset(name, data_dir=args.data_dir, test_limit=args.test_limit)
    for p, m in metas.items():
        if m is not None and m.input_shape and tuple(m.input_shape) != ds.input_shape:
            raise UsageError(f"{p}: the model takes {tuple(m.input_shape)} images, {ds.name} has {ds.input_shape}")
    pairs = [_artifact(p, metas[p]) for p in paths]
    artifacts = [a for a, _ in pairs]
    enable_progress(not args.quiet)
    timing = Timing(warmup_runs=args.warmup_runs, min_runs=args.min_runs, min_seconds=args.min_seconds)
    rows = benchmark(artifacts, ds.x_test, ds.y_test, targets, timing=timing, strict=True if args.strict else None)
    command = "edgekit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = build_report(cfg=None, dataset=ds, artifacts=artifacts, run_dir=out, verification={},
                          audits={a.id: audit for a, audit in pairs}, benchmarks=rows, targets=targets, search=None,
                          command=command, seconds=time.perf_counter() - start)
    failed = [f"{r['artifact_id']} on {r['target']} (batch {r['batch_size']}, {r['threads']} threads): {r['reason']}"
              for r in rows if r["status"] == "failed"]
    report["problems"] = list(report.get("problems", [])) + failed
    report["status"] = "failed" if report["problems"] else "ok"
    write_reports(out, report, force=args.force)
    _print(rows, {a.id: a for a in artifacts}, out)
    return 1 if failed else 0


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _print(rows: list[dict[str, Any]], artifacts: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="benchmark (emulated latency is not device speed)")
    for col in ("model", "precision", "target", "batch", "threads", "status", "provider", "p50 ms", "p90 ms",
                "per s", "accuracy", "agree vs ref target"):
        table.add_column(col, overflow="fold")
    for r in rows:
        a = artifacts[r["artifact_id"]]
        lat = r.get("latency_ms") or {}
        emu = " (emulated)" if r.get("emulated") and lat else ""
        status = escape(r["status"] + (f": {r['reason']}" if r.get("reason") else ""))
        agree = r.get("target_agreement") if r.get("reference_target") != r["target"] else None  # vs itself: 100 %
        table.add_row(a.name, a.precision, r["target"], str(r["batch_size"]), str(r["threads"]), status,
                      (r.get("provider") or "-").removesuffix("ExecutionProvider"), _fmt(lat.get("p50"), ".3f") + emu,
                      _fmt(lat.get("p90"), ".3f") + emu, _fmt(r.get("throughput_per_s"), ".0f"),
                      _fmt(r.get("accuracy"), ".4f"),
                      ("reference" if r.get("reference_target") == r["target"] else "-") if agree is None else f"{agree:.4f} vs {r.get('reference_target')}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    console.print(f"report: {out / 'report.json'}, {out / 'report.md'}", markup=False)
