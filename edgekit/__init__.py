"""edgekit: take a Keras image model to the edge.

Public API (everything else is internal)::

    import edgekit
    run = edgekit.compress(edgekit.CompressConfig(dataset="fashion-mnist"), out="runs/fm")
    report = edgekit.benchmark_models(["model.onnx"], targets=["x86-cpu", "arm64-qemu"], dataset="fashion-mnist")

TensorFlow is imported only when a stage needs it; ``TF_USE_LEGACY_KERAS=1`` is
set here so that TFMOT (Keras 2 only) works without the user doing anything.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.2.0"

from typing import TYPE_CHECKING, Any  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from edgekit.artifact import Artifact as Artifact
    from edgekit.artifact import ModelMeta as ModelMeta
    from edgekit.config import CompressConfig as CompressConfig
    from edgekit.errors import EdgekitError as EdgekitError

_LAZY = {
    "Artifact": "edgekit.artifact",
    "ModelMeta": "edgekit.artifact",
    "CompressConfig": "edgekit.config",
    "compress": "edgekit.pipeline",
    "RunResult": "edgekit.pipeline",
    "benchmark_models": "edgekit.bench.files",
    "load_dataset": "edgekit.data.datasets",
    "EdgekitError": "edgekit.errors",
    "tune": "edgekit.tuning",
    "TuneResult": "edgekit.tuning",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
