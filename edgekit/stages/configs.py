"""Typed configs of the stages (``MagnitudePruneConfig`` lives with its pruning code).

Every field has a default and a help text; unknown keys are rejected by
:func:`edgekit.schema.from_mapping`. What a config holds is part of its
artifact's content hash, so anything that changes the output belongs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edgekit.compression.quantize import OrtQuantConfig
from edgekit.errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the ``train`` stage."""

    epochs: int = field(default=5, metadata={"help": "training epochs"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    augment: bool = field(default=False, metadata={"help": "small random shifts/rotations/zoom while training"})
    model: str = field(default="", metadata={"help": "a user's Keras model to fine-tune ('' = the reference CNN)"})
    model_sha256: str = field(default="", metadata={"help": "(set by the pipeline) hash of the model file"})
    trust_model: bool = field(default=False, metadata={"help": "allow Lambda layers / custom code in --model"})
    dataset: str = field(default="", metadata={"help": "(set by the pipeline) dataset fingerprint"})
    seed: int = field(default=0, metadata={"help": "seed for Python, NumPy and TensorFlow"})

    def validate(self, where: str = "train") -> None:
        if self.epochs < 0 or (self.epochs == 0 and not self.model):
            raise UsageError(f"{where}.epochs: must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"{where}.batch_size: must be at least 1, got {self.batch_size}")
        if not 0 < self.learning_rate < 1:
            raise UsageError(f"{where}.learning_rate: must be in (0, 1), got {self.learning_rate}")


@dataclass(frozen=True)
class StructuredConfig:
    """Settings of the ``prune.structured`` stage."""

    ratio: float = field(default=0.5, metadata={"help": "fraction of filters/units removed per layer"})
    mac_budget: float = field(default=0.0, metadata={"help": "if > 0: prune globally until MACs ≤ budget × original"})
    criterion: Literal["l1", "l2", "bn_scale"] = field(default="l1", metadata={"help": "how filters are ranked"})
    epochs: int = field(default=2, metadata={"help": "fine-tuning epochs after pruning"})
    batch_size: int = field(default=64, metadata={"help": "fine-tuning batch size"})
    learning_rate: float = field(default=5e-4, metadata={"help": "fine-tuning learning rate"})
    augment: bool = field(default=False, metadata={"help": "augment images while fine-tuning"})

    def validate(self, where: str = "structured") -> None:
        if not 0 <= self.ratio < 1:
            raise UsageError(f"{where}.ratio: must be in [0, 1), got {self.ratio}")
        if not 0 <= self.mac_budget <= 1:
            raise UsageError(f"{where}.mac_budget: must be in (0, 1], got {self.mac_budget}")


@dataclass(frozen=True)
class PtqInt8Config:
    """Settings of ``quantize.ptq_int8`` (TFLite converter from Keras, ONNX Runtime QDQ from ONNX)."""

    calibration_samples: int = field(default=500, metadata={"help": "training images used to calibrate"})
    int8_io: bool = field(default=False, metadata={"help": "TFLite: int8 model input/output instead of float"})
    onnx: OrtQuantConfig = field(default_factory=OrtQuantConfig, metadata={"help": "ONNX Runtime quantization settings"})

    def validate(self, where: str = "quantize") -> None:
        if self.calibration_samples < 1:
            raise UsageError(f"{where}.calibration_samples: must be at least 1")


@dataclass(frozen=True)
class Float16Config:
    """Settings of ``quantize.ptq_float16``."""

    sparse_encoding: bool = field(default=True, metadata={
        "help": "store weights of a model ≥ 50 % sparse in TFLite's sparse encoding when the file gets smaller"})


@dataclass(frozen=True)
class DynamicConfig:
    """``quantize.ptq_dynamic`` has no settings."""


@dataclass(frozen=True)
class QatConfig:
    """Settings of ``quantize.qat`` / ``quantize.pqat``."""

    epochs: int = field(default=1, metadata={"help": "quantization-aware fine-tuning epochs"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    learning_rate: float = field(default=1e-4, metadata={"help": "fine-tuning learning rate"})
    calibration_samples: int = field(default=500, metadata={"help": "samples for the converter's remaining ranges"})


@dataclass(frozen=True)
class ExportTFLiteConfig:
    """Settings of ``export.tflite`` (fp32)."""

    sparse_encoding: bool = field(default=True, metadata={
        "help": "store weights of a model ≥ 50 % sparse in TFLite's sparse encoding when the file gets smaller"})


@dataclass(frozen=True)
class ExportOnnxConfig:
    """Settings of ``export.onnx``."""

    opset: int = field(default=17, metadata={"help": "ONNX opset"})
