"""``edgekit inspect MODEL``: what a model file really contains.

    edgekit inspect model.tflite          format, I/O, ops, MACs, params by precision, sparsity, metadata
    edgekit inspect model.onnx --json     the same audit as JSON (what report.json stores per artifact)
    edgekit inspect model.onnx --layers   also the per-layer table

.onnx and .tflite files are read without importing TensorFlow. A Keras file's
configuration is checked first (edgekit.models.safety): one that holds code
(a Lambda, a custom class) is refused unless ``--trust-model``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help=".onnx, .tflite, .keras/.h5 file or SavedModel folder "
                        "(with --trust-model)")
    parser.add_argument("--json", action="store_true", help="print the audit as JSON")
    parser.add_argument("--layers", action="store_true", help="also print the per-layer table")
    parser.add_argument("--trust-model", action="store_true",
                        help="allow loading a Keras file that holds code (Lambda layers, custom classes)")


def run(args: argparse.Namespace) -> int:
    from edgekit.audit import audit_model

    audit = audit_model(args.model, trust_model=args.trust_model)
    if args.json:
        print(json.dumps(audit, indent=2, default=str))
    else:
        _print(audit, layers=args.layers)
    return 0


def _fmt_shape(shape: list[Any]) -> str:
    return "[" + ", ".join("?" if d in (None, -1) or isinstance(d, str) else str(d) for d in shape) + "]"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _print(a: dict[str, Any], layers: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    meta = a.get("metadata") or {}
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    rows = [
        ("model", a["path"]),
        ("format", a["format"]),
        ("size", f"{a['bytes']:,} bytes ({a['gzip_bytes']:,} gzipped)"),
        ("precision (measured)", a["precision"]),
        ("int8 share of weights", _pct(a["int8_share"])),
        ("parameters", f"{a['params']['total']:,}  " + ", ".join(
            f"{d} {v['count']:,} ({_pct(v['share'])})" for d, v in a["params"]["by_dtype"].items())),
        ("MACs", f"{a['macs']:,} per sample"),
        ("sparsity (kernels)", f"{_pct(a['sparsity'])} zeros ({a['kernel_zeros']:,} of {a['kernel_params']:,})"),
    ]
    rows += [(f"input {i['name']}", f"{_fmt_shape(i['shape'])} {i['dtype']}") for i in a["inputs"]]
    rows += [(f"output {o['name']}", f"{_fmt_shape(o['shape'])} {o['dtype']}") for o in a["outputs"]]
    rows.append(("ops", ", ".join(f"{op} ×{n}" for op, n in a["ops"].items())))
    if meta:
        rows.append(("labels", ", ".join(str(x) for x in meta.get("labels", [])) or "(none)"))
        pre = (f"{meta.get('layout', '?')} {_fmt_shape(meta.get('input_shape', []))} {meta.get('color', '?')}; "
               f"x * {meta.get('scale', 1):.6g}, then (x - {meta.get('mean', 0)}) / {meta.get('std', 1)}; "
               f"output {meta.get('output', '?')}")
        if "scale" in meta:
            rows.append(("preprocessing", pre))
        for key in ("dataset", "artifact_id", "edgekit_version"):
            if meta.get(key):
                rows.append((key.replace("_", " "), str(meta[key])))
    else:
        rows.append(("metadata", "none embedded (labels unknown)"))
    for k, v in rows:
        head.add_row(escape(k), escape(str(v)))
    console.print(head)
    if layers and a["layers"]:
        t = Table(title="layers")
        for col in ("name", "op", "weights", "params", "zeros", "MACs"):
            t.add_column(col, justify="right" if col in ("params", "zeros", "MACs") else "left", overflow="fold")
        for layer in a["layers"]:
            t.add_row(escape(layer["name"][-60:]), layer["op"], str(layer["weight_dtype"] or "-"),
                      f"{layer['params']:,}", _pct(layer["sparsity"]), f"{layer['macs']:,}")
        console.print(t)
