"""Model formats: the one registry of what edgekit reads, writes, runs and audits.

Each format is a row of :data:`FORMATS` (suffixes, file or folder, the runtime that executes it,
parity overrides) plus a handler module, ``edgekit/formats/<name>.py``, with:

* ``audit(path, *, trust_model=False) -> dict``: what the file really contains (see :mod:`edgekit.audit`);
* ``embed_metadata(path, meta, artifact_id)`` and ``read_metadata_dict(path)``: the metadata hook
  (into :mod:`edgekit.export.metadata`).

Running a deployable format goes through its ``runtime`` (a session in :mod:`edgekit.runtime.sessions`).
This module imports nothing heavy and no handler at import time: handlers load on first use, so
the registry can sit below everything that dispatches on a format (artifact, metadata, bench).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from edgekit.errors import ConfigError


@dataclass(frozen=True)
class FormatSpec:
    """One model format: how its files are recognised, what runs it, where its handler is."""

    name: str
    suffixes: tuple[str, ...]  # the first is the suffix edgekit writes
    handler_module: str  # e.g. "edgekit.formats.onnx"
    folder: bool = False  # a folder can hold a model of this format (SavedModel)
    runtime: str | None = None  # the runtime that executes it on a device; None: not deployable
    parity: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    """Overrides of :data:`edgekit.rules.parity.TOLERANCES` for this format, by precision."""

    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    @property
    def deployable(self) -> bool:
        return self.runtime is not None

    def handler(self) -> ModuleType:
        """The handler module (imported on first use)."""
        return importlib.import_module(self.handler_module)


FORMATS: dict[str, FormatSpec] = {s.name: s for s in (
    FormatSpec("keras", (".keras", ".h5", ".hdf5"), "edgekit.formats.keras", folder=True),
    FormatSpec("onnx", (".onnx",), "edgekit.formats.onnx", runtime="onnxruntime"),
    FormatSpec("tflite", (".tflite",), "edgekit.formats.tflite", runtime="litert"),
)}
"""Format name → its declaration (the one formats table)."""


def spec(name: str) -> FormatSpec:
    """The declaration of format ``name``."""
    if name not in FORMATS:
        raise ConfigError(f"unknown model format {name!r} (known: {', '.join(FORMATS)})")
    return FORMATS[name]


def format_of(path: str | Path) -> str:
    """The format of a model file (or folder), from its suffix."""
    p = Path(path)
    for s in FORMATS.values():
        if p.suffix in s.suffixes or (s.folder and p.is_dir()):
            return s.name
    expected = ", ".join(x for s in FORMATS.values() for x in s.suffixes)
    folders = [s.name for s in FORMATS.values() if s.folder]
    raise ConfigError(f"{p}: unknown model format (expected {expected}"
                      + (f" or a {'/'.join(folders)} folder)" if folders else ")"))


def deployable_formats() -> tuple[str, ...]:
    """Formats a device runtime executes (what benchmarks and the search choose among)."""
    return tuple(s.name for s in FORMATS.values() if s.deployable)


def runtime_formats() -> dict[str, str]:
    """Runtime name → the format it executes."""
    return {s.runtime: s.name for s in FORMATS.values() if s.runtime is not None}
