"""Exporters: turn a model file into another deployable form (``edgekit export``'s library half).

One table, :data:`EXPORT_FORMATS`: name → the model files it accepts, a help line and the writer.
Adding an export form is one row here plus its writer module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import UsageError


@dataclass(frozen=True)
class ExportFormat:
    """One export form: the model files it takes, a help line, and ``write(model, out_dir, name, force) -> files``."""

    suffixes: tuple[str, ...]
    help: str
    write: Callable[[Path, Path, str | None, bool], list[Path]]


def _c_array(model: Path, out_dir: Path, name: str | None, force: bool) -> list[Path]:
    from edgekit.export.c_array import write_c_array

    out = write_c_array(model, out_dir, name=name, force=force)
    return [out.header, out.source]


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "c-array": ExportFormat((".tflite",), "NAME.h/NAME.c with a 16-byte aligned array, its length and the labels",
                            _c_array),
}


def export_model(model: str | Path, fmt: str, out_dir: str | Path | None = None, *, name: str | None = None,
                 force: bool = False) -> list[Path]:
    """Write ``model`` as export form ``fmt`` into ``out_dir`` (default: beside the model); returns the files
    written."""
    model = Path(model)
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"--format: unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    spec = EXPORT_FORMATS[fmt]
    if model.suffix not in spec.suffixes:
        raise UsageError(f"{model}: --format {fmt} takes {' or '.join(spec.suffixes)} files")
    if not model.is_file():
        raise UsageError(f"{model}: no such file")
    return spec.write(model, Path(out_dir) if out_dir is not None else model.parent, name, force)
