"""``edgekit analyze MODEL``: per-layer sensitivity to pruning, filter removal and int8, before compressing.

    edgekit analyze my.keras --dataset fashion-mnist --out runs/analysis
    edgekit analyze my.keras --data-dir data/ --budget 0.5 --json

Writes analysis.json (and analysis.html) into --out and prints one row per conv/dense
layer, the guiltiest first. Validation data only; the test set is never read for this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgekit.commands import recorded_command


def _fractions(value: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions such as 0.3,0.5, got {value!r}") from None
    if not out or any(not 0.0 < v < 1.0 for v in out):
        raise argparse.ArgumentTypeError(f"every fraction must be in (0, 1), got {value!r}")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgekit.analyze.decide import DEFAULT_BUDGET_PP

    parser.add_argument("model", type=Path, help=".keras/.h5 file (tf_keras or Keras 3) or SavedModel folder "
                        "(with --trust-model)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--dataset", help="mnist | fashion-mnist | digits")
    data.add_argument("--data-dir", help="IDX files, an .npz, or class-per-folder images")
    parser.add_argument("--image-size", type=int, default=28, help="image-folder data: resize to this square size")
    parser.add_argument("--color", choices=("grayscale", "rgb"), default="grayscale",
                        help="image-folder data: colour mode")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use the first N training samples (validation is carved from them)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_PP,
                        help=f"validation-accuracy budget in pp (default {DEFAULT_BUDGET_PP:g})")
    parser.add_argument("--sparsities", type=_fractions, default=None,
                        help="magnitude sparsities tried per layer (default 0.3,0.5,0.7,0.8,0.9)")
    parser.add_argument("--structured", type=_fractions, default=None,
                        help="filter fractions removed per layer (default 0.125,0.25,0.5)")
    parser.add_argument("--calibration-samples", type=int, default=256, help="training images that calibrate int8")
    parser.add_argument("--out", type=Path, default=Path("analysis"),
                        help="folder for analysis.json/.html (default ./analysis)")
    parser.add_argument("--force", action="store_true", help="replace analysis files already in --out")
    parser.add_argument("--trust-model", action="store_true", help="allow Lambda layers / custom code in the model")
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON instead of a table")
    parser.add_argument("--workers", type=int, default=None,
                        help="measure the layers on a local Ray with N workers (0: in process); "
                             "default: in process, no Ray")
    parser.add_argument("--ray-address", default=None,
                        help="measure the layers on the Ray cluster at HOST:PORT (the cache folder must be shared)")


def run(args: argparse.Namespace) -> int:
    from edgekit.analyze.sensitivity import SensitivityConfig
    from edgekit.errors import OutputExistsError, UsageError
    from edgekit.schema import MAX_SEED

    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be in [0, {MAX_SEED}], got {args.seed}")
    if not args.budget >= 0:
        raise UsageError(f"--budget must not be negative, got {args.budget:g}")
    if args.calibration_samples < 1:
        raise UsageError(f"--calibration-samples must be at least 1, got {args.calibration_samples}")
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers must not be negative, got {args.workers}")
    defaults = SensitivityConfig()
    cfg = SensitivityConfig(sparsities=args.sparsities or defaults.sparsities,
                            structured=args.structured or defaults.structured,
                            calibration_samples=args.calibration_samples, budget_pp=args.budget)
    cfg.validate("analyze")
    if args.out.exists() and not args.out.is_dir():
        raise OutputExistsError(f"{args.out}: exists and is not a folder")
    existing = [p for p in (args.out / "analysis.json", args.out / "analysis.html") if p.exists()]
    if existing and not args.force:
        raise OutputExistsError(f"{existing[0]}: already exists (use --force to replace it, or choose another --out)")
    if not args.model.exists():
        raise UsageError(f"{args.model}: no such model file or folder")

    from contextlib import ExitStack

    from edgekit import fanout
    from edgekit.analyze.parallel import WORKER_MODULES
    from edgekit.analyze.sensitivity import analyze_dataset
    from edgekit.console import enable_progress
    from edgekit.data.datasets import load_dataset
    from edgekit.errors import DataError
    from edgekit.executor import open_executor, probe_address
    from edgekit.fsutil import write_json, write_text
    from edgekit.models.loading import load_user_model

    if fanout.wanted(args.workers, args.ray_address):
        probe_address(args.ray_address)  # before the model or data: Ray's own connect hangs silently
    enable_progress(not args.json)
    with ExitStack() as stack:
        ex = None
        if fanout.wanted(args.workers, args.ray_address):  # started first: its workers warm up while we load
            ex = stack.enter_context(open_executor(args.ray_address, workers=args.workers))
            ex.warm(WORKER_MODULES)
        loaded = load_user_model(args.model, trust=args.trust_model)
        dataset = load_dataset(args.dataset, data_dir=args.data_dir, train_limit=args.train_limit, seed=args.seed,
                               image_size=args.image_size, color=args.color)
        if tuple(loaded.input_shape) != tuple(dataset.input_shape):
            raise DataError(f"{args.model}: the model takes {tuple(loaded.input_shape)} images, "
                            f"the data holds {tuple(dataset.input_shape)}")
        analysis = analyze_dataset(loaded.model, dataset, cfg, executor=ex)
        if ex is not None:
            analysis["executor"] = ex.info()
    analysis["model"] = str(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "analysis.json", analysis)
    html = render_analysis_html(analysis, recorded_command(args))
    if html is not None:
        write_text(args.out / "analysis.html", html)
    if args.json:
        print(json.dumps(analysis, indent=2))
    else:
        _print(analysis, args.out)
    return 0


def render_analysis_html(analysis: dict[str, Any], command: str = "") -> str | None:
    """analysis.html through the report's renderer (its analysis section); None if it cannot render it."""
    try:
        from edgekit.report.html import render_html

        return render_html({"report_version": 1, "status": "ok", "dataset": {"name": analysis.get("dataset", "")},
                            "command": command, "artifacts": [], "benchmarks": [], "analysis": analysis})
    except Exception as e:  # noqa: BLE001 - the JSON is the result; the page is a view of it
        print(f"edgekit: analysis.html not written ({e})", file=sys.stderr)
        return None


def _drops(d: dict[str, float]) -> str:
    return " ".join(f"{float(k) * 100:g}%:{v:+.1f}" for k, v in sorted(d.items(), key=lambda kv: float(kv[0]))) or "—"


def _print(a: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    table = Table(title=f"per-layer sensitivity (validation drop, pp; budget {a['budget_pp']:g} pp)")
    for col, right in (("layer", False), ("op", False), ("params", True), ("MACs", True),
                       ("prune sparsity → drop", False), ("filters removed → drop", False), ("int8 SNR dB", True),
                       ("int8 drop", True), ("protected", False)):
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for r in a["layers"]:
        q = r.get("quant") or {}
        table.add_row(r["name"], r["op"], f"{r['params']:,}", f"{r['macs']:,}", _drops(r["prune"]),
                      _drops(r["structured"]), "—" if q.get("snr_db") is None else f"{q['snr_db']:.1f}",
                      f"{q.get('drop_pp', 0.0):+.2f}",
                      "yes" if r["protected"] else "")
    console.print(table)
    console.print(f"baseline validation accuracy {a['baseline_val_accuracy'] * 100:.2f} % "
                  f"on {a['val_samples']} images; "
                  f"all layers in int8 (simulated, protected layers in float): "
                  f"{'n/a' if a['int8_all_drop_pp'] is None else format(a['int8_all_drop_pp'], '+.2f')} pp")
    for r in a["layers"]:
        if r["reason"]:
            console.print(f"  {r['name']}: {r['reason']}")
    console.print(f"wrote {out / 'analysis.json'}")
