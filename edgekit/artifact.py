"""Artifact: one model file produced by one stage, with its lineage.

An artifact's ``id`` is a short content hash of (parent id, stage name,
canonical config, edgekit version, a hash of edgekit's source): the same inputs name the same
artifact, which is what lets :mod:`edgekit.cache` reuse finished stages and
lets every file in a report be walked back to the trained model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from edgekit import __version__
from edgekit.errors import ConfigError
from edgekit.formats import FORMATS as _FORMAT_SPECS
from edgekit.formats import format_of

__all__ = ["ARTIFACT_JSON", "PRECISIONS", "SUFFIXES", "Artifact", "ModelMeta", "artifact_id", "canonical_json",
           "format_of"]

Format = Literal["keras", "tflite", "onnx"]  # the names of edgekit.formats.FORMATS, for type checkers
Precision = Literal["fp32", "fp16", "int8", "mixed"]

SUFFIXES: dict[str, str] = {name: s.suffix for name, s in _FORMAT_SPECS.items()}
"""Model format → the file suffix edgekit stores it with (derived from :data:`edgekit.formats.FORMATS`)."""

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "mixed")

ARTIFACT_JSON = "artifact.json"


def canonical_json(obj: Any) -> str:
    """Deterministic JSON used for hashing configs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of edgekit's own source files. Part of every artifact id: the version string does not change between
    commits of a checkout, and a cached pruned model made by older fine-tuning code must not stand in for one the
    current code would make."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def artifact_id(parent_id: str | None, stage: str, config: Mapping[str, Any]) -> str:
    """The content hash naming the output of ``stage`` run with ``config`` on ``parent_id`` by this edgekit (its
    version and :func:`code_fingerprint`)."""
    payload = canonical_json({"parent": parent_id, "stage": stage, "config": dict(config), "version": __version__,
                              "code": code_fingerprint()})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ModelMeta:
    """What an app needs to feed a model and read its answer; travels inside exported files."""

    labels: tuple[str, ...]
    input_shape: tuple[int, ...]  # without the batch axis, e.g. (28, 28, 1)
    layout: str = "NHWC"
    scale: float = 1.0 / 255.0  # pixel * scale, then (x - mean) / std
    mean: float = 0.0
    std: float = 1.0
    color: str = "grayscale"  # grayscale | rgb
    output: str = "softmax"  # softmax | logits
    dataset: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["labels"] = list(self.labels)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelMeta:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["labels"] = tuple(str(x) for x in kw.get("labels", ()))
        kw["input_shape"] = tuple(int(x) for x in kw.get("input_shape", ()))
        return cls(**kw)


@dataclass(frozen=True)
class Artifact:
    """A model file and the record of how it was made."""

    id: str
    stage: str
    format: Format
    precision: Precision
    path: Path
    parent_id: str | None
    config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    meta: ModelMeta | None = None
    name: str = ""  # a readable label within a run, e.g. "pruned-int8"

    def __post_init__(self) -> None:
        if self.format not in SUFFIXES:
            raise ConfigError(f"artifact {self.id}: unknown format {self.format!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"artifact {self.id}: unknown precision {self.precision!r}")

    def with_metrics(self, **metrics: Any) -> Artifact:
        """A copy with ``metrics`` merged in."""
        return dataclasses.replace(self, metrics={**self.metrics, **metrics})

    def with_path(self, path: Path) -> Artifact:
        return dataclasses.replace(self, path=Path(path))

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        path = self.path
        if relative_to is not None:
            try:
                path = self.path.relative_to(relative_to)
            except ValueError:
                pass
        return {
            "id": self.id,
            "name": self.name,
            "stage": self.stage,
            "format": self.format,
            "precision": self.precision,
            "path": str(path),
            "parent_id": self.parent_id,
            "config": dict(self.config),
            "metrics": dict(self.metrics),
            "meta": self.meta.to_dict() if self.meta else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], root: Path | None = None) -> Artifact:
        path = Path(d["path"])
        if root is not None and not path.is_absolute():
            path = root / path
        return cls(
            id=d["id"],
            stage=d["stage"],
            format=d["format"],
            precision=d["precision"],
            path=path,
            parent_id=d.get("parent_id"),
            config=d.get("config") or {},
            metrics=d.get("metrics") or {},
            meta=ModelMeta.from_dict(d["meta"]) if d.get("meta") else None,
            name=d.get("name", ""),
        )
