"""The stage registry: every step of a pipeline, by name.

A stage consumes an artifact of some formats, produces one of another, takes a
typed config (a frozen dataclass validated by :mod:`edgekit.schema`) and runs
as ``run(parent, config, ctx, out_path) -> StageOutput``; the pipeline names
the output (content hash), caches it and records the :class:`Artifact`. Implementations are imported
lazily, so listing or validating a pipeline costs no TensorFlow import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from edgekit.artifact import Artifact, Format
from edgekit.errors import UsageError


@dataclass
class Context:
    """What stages share within one run: the data, the work folder, loaded models."""

    dataset: Any  # edgekit.data.datasets.Dataset
    workdir: Path  # where a stage writes its output before the cache takes it
    seed: int = 0
    models: dict[str, Any] = field(default_factory=dict)  # artifact id → in-memory Keras model

    def keras_model(self, artifact: Artifact) -> Any:
        """The Keras model of ``artifact``, loaded once."""
        if artifact.id not in self.models:
            from edgekit.models.files import load_keras_file

            self.models[artifact.id] = load_keras_file(artifact.path)
        return self.models[artifact.id]


@dataclass
class StageOutput:
    """What a stage returns after writing its model file to the path it was given."""

    precision: str
    metrics: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # the in-memory Keras model, for Keras outputs


def inherited_metrics(parent: Artifact) -> dict[str, Any]:
    """What a conversion's output inherits from its parent: the output activation and the sparsity."""
    return {k: parent.metrics[k] for k in ("output", "sparsity") if k in parent.metrics}


def outputs_logits(parent: Artifact) -> bool:
    """Whether the parent model ends in logits rather than softmax (the loss must know)."""
    return parent.metrics.get("output") == "logits"


StageFn = Callable[[Artifact | None, Any, Context, Path], StageOutput]


@dataclass(frozen=True)
class Stage:
    """One registered pipeline stage."""

    name: str
    produces: Mapping[str, Format]  # input format ("" for a source stage) → output format
    config_type: type
    entry: str  # "module:function", imported on first use
    description: str

    @property
    def consumes(self) -> tuple[str, ...]:
        return tuple(self.produces)

    def output_format(self, input_format: str | None) -> Format:
        key = input_format or ""
        if key not in self.produces:
            raise UsageError(f"stage {self.name} cannot take a {input_format or 'missing'} input "
                             f"(takes {', '.join(k or 'nothing' for k in self.produces)})")
        return self.produces[key]

    def load(self) -> StageFn:
        module, func = self.entry.split(":")
        return getattr(importlib.import_module(module), func)


def _registry() -> dict[str, Stage]:
    from edgekit.stages.configs import (ExportOnnxConfig, ExportTFLiteConfig, Float16Config, DynamicConfig,
                                        PtqInt8Config, QatConfig, StructuredConfig, TrainConfig)
    from edgekit.compression.prune import MagnitudePruneConfig

    stages = [
        Stage("train", {"": "keras"}, TrainConfig, "edgekit.stages.train:run_train",
              "train the reference CNN, or fine-tune the user's Keras model"),
        Stage("prune.magnitude", {"keras": "keras"}, MagnitudePruneConfig, "edgekit.stages.prune:run_magnitude",
              "zero the smallest weights (TFMOT) while fine-tuning"),
        Stage("prune.structured", {"keras": "keras"}, StructuredConfig, "edgekit.stages.prune:run_structured",
              "remove whole filters/units and rebuild a smaller model, then fine-tune"),
        Stage("quantize.ptq_int8", {"keras": "tflite", "onnx": "onnx"}, PtqInt8Config,
              "edgekit.stages.quantize:run_ptq_int8", "full-integer post-training quantization"),
        Stage("quantize.ptq_float16", {"keras": "tflite"}, Float16Config, "edgekit.stages.quantize:run_ptq_float16",
              "float16 weights"),
        Stage("quantize.ptq_dynamic", {"keras": "tflite"}, DynamicConfig, "edgekit.stages.quantize:run_ptq_dynamic",
              "int8 weights, float activations (dynamic range)"),
        Stage("quantize.qat", {"keras": "tflite"}, QatConfig, "edgekit.stages.quantize:run_qat",
              "quantization-aware training, then an int8 TFLite model with the learned ranges"),
        Stage("quantize.pqat", {"keras": "tflite"}, QatConfig, "edgekit.stages.quantize:run_pqat",
              "pruning-preserving quantization-aware training"),
        Stage("export.tflite", {"keras": "tflite"}, ExportTFLiteConfig, "edgekit.stages.export:run_export_tflite",
              "convert to TFLite (fp32)"),
        Stage("export.onnx", {"keras": "onnx", "tflite": "onnx"}, ExportOnnxConfig,
              "edgekit.stages.export:run_export_onnx", "convert to ONNX (tf2onnx); from an int8 TFLite model, int8 QDQ"),
    ]
    return {s.name: s for s in stages}


_STAGES: dict[str, Stage] = {}


def stages() -> dict[str, Stage]:
    """Every stage, by name (the one stage table)."""
    if not _STAGES:
        _STAGES.update(_registry())
    return _STAGES


def get_stage(name: str) -> Stage:
    table = stages()
    if name not in table:
        raise UsageError(f"unknown stage {name!r} (known: {', '.join(table)})")
    return table[name]
