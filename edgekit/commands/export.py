"""``edgekit export MODEL --format FORMAT``: turn a model file into another deployable form.

    edgekit export model.tflite --format c-array [--out DIR] [--name NAME] [--force]

Formats come from :data:`EXPORT_FORMATS` (one table: name → input suffix, help, writer).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class ExportFormat:
    suffixes: tuple[str, ...]  # model files this format accepts
    help: str
    write: Callable[[argparse.Namespace], list[Path]]  # returns the files written


def _c_array(args: argparse.Namespace) -> list[Path]:
    from edgekit.export.c_array import write_c_array

    out = write_c_array(args.model, args.out or args.model.parent, name=args.name, force=args.force)
    return [out.header, out.source]


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "c-array": ExportFormat((".tflite",), "NAME.h/NAME.c with a 16-byte aligned array, its length and the labels",
                            _c_array),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the model file to export")
    parser.add_argument("--format", required=True, choices=list(EXPORT_FORMATS),
                        help="; ".join(f"{k}: {v.help}" for k, v in EXPORT_FORMATS.items()))
    parser.add_argument("--out", type=Path, help="output folder (default: beside the model)")
    parser.add_argument("--name", help="base name of the written files/symbols (default: from the model file name)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")


def run(args: argparse.Namespace) -> int:
    from edgekit.errors import UsageError

    fmt = EXPORT_FORMATS[args.format]
    if args.model.suffix not in fmt.suffixes:
        raise UsageError(f"{args.model}: --format {args.format} takes {' or '.join(fmt.suffixes)} files")
    if not args.model.is_file():
        raise UsageError(f"{args.model}: no such file")
    for path in fmt.write(args):
        print(path)
    return 0
