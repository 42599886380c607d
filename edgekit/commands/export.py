"""``edgekit export MODEL --format FORMAT``: turn a model file into another deployable form.

    edgekit export model.tflite --format c-array [--out DIR] [--name NAME] [--force]

Formats come from :data:`edgekit.export.exporters.EXPORT_FORMATS` (the library's one table);
this module only parses and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekit.export.exporters import EXPORT_FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the model file to export")
    parser.add_argument("--format", required=True, choices=list(EXPORT_FORMATS),
                        help="; ".join(f"{k}: {v.help}" for k, v in EXPORT_FORMATS.items()))
    parser.add_argument("--out", type=Path, help="output folder (default: beside the model)")
    parser.add_argument("--name", help="base name of the written files/symbols (default: from the model file name)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")


def run(args: argparse.Namespace) -> int:
    from edgekit.export.exporters import export_model

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        from edgekit.errors import UsageError

        raise UsageError(f"--out {args.out}: exists and is not a folder")
    for path in export_model(args.model, args.format, args.out, name=args.name, force=args.force):
        print(path)
    return 0
