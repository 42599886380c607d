"""``edgekit devices``: list device profiles and whether each can run from here; check or set one up.

    edgekit devices [--devices-dir D] [--no-probe]   list profiles, with the reason any cannot run here
    edgekit devices check NAME                        run a tiny model there and print the rows
    edgekit devices setup NAME [--force]              provision what NAME needs (the ARM64 sysroot for qemu)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ACTIONS = ("list", "check", "setup")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=ACTIONS, help="list (default), check or setup")
    parser.add_argument("name", nargs="?", help="device profile name (check, setup)")
    parser.add_argument("--devices-dir", action="append", default=[], metavar="DIR",
                        help="extra folder of *.toml profiles (repeatable; also $EDGEKIT_DEVICES_DIR)")
    parser.add_argument("--no-probe", action="store_true", help="do not connect to SSH boards while listing")
    parser.add_argument("--force", action="store_true", help="setup: rebuild even if already set up")


def run(args: argparse.Namespace) -> int:
    from edgekit.errors import UsageError
    from edgekit.targets import get_target, load_targets

    if args.action == "list":
        if args.name:
            raise UsageError(f"devices: unexpected argument {args.name!r} (did you mean `devices check {args.name}`?)")
        return _list(load_targets(args.devices_dir), probe=not args.no_probe)
    if not args.name:
        raise UsageError(f"devices {args.action}: a profile NAME is required")
    target = get_target(args.name, args.devices_dir)
    return _check(target) if args.action == "check" else _setup(target, args.force)


def _list(targets: dict, probe: bool) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from edgekit.locations import location_for

    table = Table(title="device profiles")
    for col in ("name", "where", "arch", "runtimes", "providers", "preset", "can run here"):
        table.add_column(col, overflow="fold")
    for name, t in sorted(targets.items()):
        location = location_for(t)
        reason, where = location.unavailable_reason(probe=probe), location.where()
        providers = ", ".join(p.removesuffix("ExecutionProvider") for p in t.onnxruntime.providers)
        runtimes, yes = ", ".join(t.runtimes), "[green]yes[/]"
        if t.mcu is not None:  # a microcontroller: its int8 files run on TFLM's kernels here, budgets checked
            runtimes, providers = t.mcu.runtime, ""
            yes = "[green]yes[/] (on TFLM's kernels here: fit and accuracy, no latency)"
        table.add_row(name, where, t.arch, runtimes, providers, t.quant_preset,
                      yes if reason is None else f"[red]no[/]: {escape(reason)}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    return 0


def _check(target) -> int:  # noqa: ANN001 - a Target
    from rich.console import Console

    from edgekit.artifact import Artifact
    from edgekit.bench.api import Timing, benchmark
    from edgekit.bench.tiny import tiny_data, write_tiny_onnx
    from edgekit.errors import TargetError
    from edgekit.locations import unavailable_reason

    reason = unavailable_reason(target)
    if reason:
        raise TargetError(f"{target.name}: cannot run from here: {reason}")
    if "onnxruntime" not in target.runtimes:
        raise TargetError(f"{target.name}: check needs the onnxruntime runtime, "
                          f"the profile has {', '.join(target.runtimes)}")
    console = Console()
    with tempfile.TemporaryDirectory(prefix="edgekit-check-") as tmp:
        path = write_tiny_onnx(Path(tmp) / "tiny.onnx")
        art = Artifact(id="tinycheck", stage="check", format="onnx", precision="fp32", path=path, parent_id=None,
                       name="tiny")
        x, y = tiny_data()
        rows = benchmark([art], x, y, [target], timing=Timing(warmup_runs=2, min_runs=10, min_seconds=0.1,
                                                               max_seconds=5.0))
    bad = [r for r in rows if r["status"] != "ok"]
    for r in rows:
        lat = r.get("latency_ms") or {}
        p50 = f"{lat['p50']:.3f} ms" if lat else "-"
        label = " (emulated)" if r.get("emulated") else ""
        console.print(f"{target.name}: batch {r['batch_size']} threads {r['threads']}: {r['status']} "
                      f"provider={r.get('provider')} node_share={r.get('node_share')} p50={p50}{label}"
                      + (f" reason: {r['reason']}" if r.get("reason") else ""), markup=False)
    if bad:
        raise TargetError(f"{target.name}: check failed: {bad[0].get('reason')}")
    console.print(f"{target.name}: ok", markup=False)
    return 0


def _setup(target, force: bool) -> int:  # noqa: ANN001 - a Target
    from rich.console import Console

    from edgekit.locations import location_for

    Console().print(location_for(target).setup(force=force), markup=False)
    return 0
