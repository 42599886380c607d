"""CompressConfig: everything ``edgekit compress`` does, as flags or as a YAML recipe.

A recipe file holds the same keys as the flags (``sparsity: 0.75``,
``quantization: [ptq-int8, qat]``…); flags given on the command line win over
the recipe. Unknown keys or bad values fail with one line naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from edgekit.errors import ConfigError, UsageError
from edgekit.schema import from_mapping

QuantMode = Literal["ptq-int8", "ptq-float16", "ptq-dynamic", "qat", "pqat"]

QUANT_MODES: dict[str, str] = {
    # CLI/recipe mode → stage name (the one table of quantization modes)
    "ptq-int8": "quantize.ptq_int8",
    "ptq-float16": "quantize.ptq_float16",
    "ptq-dynamic": "quantize.ptq_dynamic",
    "qat": "quantize.qat",
    "pqat": "quantize.pqat",
}


@dataclass(frozen=True)
class CompressConfig:
    """What one ``edgekit compress`` run does. Field names are the recipe keys."""

    # data
    dataset: str | None = field(default=None, metadata={"help": "mnist | fashion-mnist | digits (default: mnist, else digits offline)"})
    data_dir: str | None = field(default=None, metadata={"help": "IDX files, an .npz, or class-per-folder images"})
    image_size: int = field(default=28, metadata={"help": "image-folder data: resize to this square size"})
    color: Literal["grayscale", "rgb"] = field(default="grayscale", metadata={"help": "image-folder data: colour mode"})
    train_limit: int | None = field(default=None, metadata={"help": "train on the first N training samples"})
    test_limit: int | None = field(default=None, metadata={"help": "evaluate on the first N test samples"})
    seed: int = field(default=0, metadata={"help": "seed for Python, NumPy and TensorFlow"})
    # training
    epochs: int = field(default=5, metadata={"help": "training (or fine-tuning) epochs"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    augment: bool = field(default=False, metadata={"help": "augment training images (shifts, rotations, zoom)"})
    model: str | None = field(default=None, metadata={"help": "fine-tune this Keras model instead of the reference CNN"})
    trust_model: bool = field(default=False, metadata={"help": "allow Lambda layers / custom code in --model"})
    # pruning
    structured: float = field(default=0.0, metadata={"help": "fraction of filters/units to remove (0 = off)"})
    structured_criterion: Literal["l1", "l2", "bn_scale"] = field(default="l1", metadata={"help": "how filters are ranked"})
    mac_budget: float = field(default=0.0, metadata={"help": "structured pruning to this fraction of MACs (0 = use ratio)"})
    sparsity: float = field(default=0.8, metadata={"help": "magnitude-pruning target sparsity (0 = off)"})
    sparsity_pattern: str = field(default="", metadata={"help": "N:M pattern such as 2:4 instead of a sparsity level"})
    prune_schedule: Literal["polynomial", "constant"] = field(default="polynomial", metadata={"help": "sparsity schedule"})
    prune_epochs: int = field(default=3, metadata={"help": "fine-tuning epochs for each pruning stage"})
    per_layer_sparsity: dict[str, float] = field(default_factory=dict, metadata={"help": "layer name → sparsity"})
    # quantization
    quantization: tuple[QuantMode, ...] = field(default=("ptq-int8",), metadata={"help": "modes to produce"})
    calibration: Literal["minmax", "entropy", "percentile"] = field(default="minmax", metadata={"help": "ONNX activation calibration"})
    calibration_samples: int = field(default=500, metadata={"help": "training images used to calibrate"})
    preset: str = field(default="", metadata={"help": "ONNX quantization preset: avx2 | avx512_vnni | arm64 | tensorrt"})
    int8_io: bool = field(default=False, metadata={"help": "TFLite int8: integer model input/output"})
    qat_epochs: int = field(default=1, metadata={"help": "quantization-aware training epochs"})
    # benchmark
    targets: tuple[str, ...] = field(default=(), metadata={"help": "device profiles to benchmark on (default: this CPU)"})
    devices_dir: tuple[str, ...] = field(default=(), metadata={"help": "extra folders of device profiles"})
    bench_min_runs: int = field(default=200, metadata={"help": "timed runs per cell, at least"})
    bench_min_seconds: float = field(default=1.0, metadata={"help": "seconds per cell, at least"})
    bench: bool = field(default=True, metadata={"help": "run the benchmark"})
    # search
    max_accuracy_drop: float | None = field(default=None, metadata={"help": "search: validation accuracy budget, in pp"})
    latency_target_ms: float | None = field(default=None, metadata={"help": "search: p50 latency goal at batch 1, 1 thread"})
    target: str = field(default="", metadata={"help": "search: the device profile latency is measured on"})
    search_structured: tuple[float, ...] = field(default=(0.0, 0.25, 0.5), metadata={"help": "search grid: structured ratios"})
    search_sparsity: tuple[float, ...] = field(default=(0.0, 0.8), metadata={"help": "search grid: magnitude sparsities"})
    search_quantization: tuple[QuantMode, ...] = field(default=("ptq-int8", "ptq-float16", "ptq-dynamic"),
                                                       metadata={"help": "search grid: quantization modes"})
    # caching
    cache: bool = field(default=True, metadata={"help": "reuse finished stages from the artifact cache"})

    def validate(self, where: str = "config") -> None:
        """Check every value before any heavy work (raises UsageError naming the flag)."""
        if self.dataset is not None and self.data_dir is not None:
            raise UsageError("--dataset and --data-dir are mutually exclusive")
        if self.epochs < 1 and not self.model:
            raise UsageError(f"--epochs must be at least 1, got {self.epochs}")
        if self.epochs < 0:
            raise UsageError(f"--epochs must not be negative, got {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.sparsity < 1.0:
            raise UsageError(f"--sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 <= self.structured < 1.0:
            raise UsageError(f"--structured must be in [0, 1), got {self.structured}")
        if self.sparsity_pattern:
            from edgekit.compression.prune import parse_pattern

            if parse_pattern(self.sparsity_pattern) is None:
                raise UsageError(f"--sparsity-pattern must be N:M with 0 < N < M (e.g. 2:4), got {self.sparsity_pattern!r}")
        if self.train_limit is not None and self.train_limit < 10:
            raise UsageError(f"--train-limit must be at least 10, got {self.train_limit}")
        if self.test_limit is not None and self.test_limit < 1:
            raise UsageError(f"--test-limit must be at least 1, got {self.test_limit}")
        if self.prune_epochs < 1:
            raise UsageError(f"--prune-epochs must be at least 1, got {self.prune_epochs}")
        if self.calibration_samples < 1:
            raise UsageError(f"--calibration-samples must be at least 1, got {self.calibration_samples}")
        if self.preset:
            from edgekit.compression.presets import PRESETS

            if self.preset not in PRESETS:
                raise UsageError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.max_accuracy_drop is not None and self.max_accuracy_drop < 0:
            raise UsageError(f"--max-accuracy-drop must be >= 0, got {self.max_accuracy_drop}")
        if self.latency_target_ms is not None and self.latency_target_ms <= 0:
            raise UsageError(f"--latency-target-ms must be > 0, got {self.latency_target_ms}")
        if any(not 0 <= r < 1 for r in (*self.search_structured, *self.search_sparsity)):
            raise UsageError("search_structured and search_sparsity values must be in [0, 1)")
        if self.bench_min_runs < 1 or self.bench_min_seconds < 0:
            raise UsageError("--bench-min-runs must be >= 1 and --bench-min-seconds >= 0")
        if self.model is not None and not Path(self.model).exists():
            raise UsageError(f"--model: {self.model} does not exist")
        if self.data_dir is not None and not Path(self.data_dir).exists():
            raise UsageError(f"--data-dir: {self.data_dir} does not exist")

    def replace(self, **changes: Any) -> "CompressConfig":
        return dataclasses.replace(self, **changes)


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe into a mapping of CompressConfig keys (validated by :func:`make_config`)."""
    from edgekit.safe_yaml import load_yaml_bounded

    p = Path(path)
    data = load_yaml_bounded(p)  # bounded size/aliases/depth, UTF-8, safe tags only (issue 10 items 4, 13)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a mapping of keys to values")
    return data


def make_config(recipe: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> CompressConfig:
    """A validated CompressConfig from an optional recipe file plus explicit overrides (flags)."""
    data: dict[str, Any] = {}
    where = "config"
    if recipe is not None:
        data.update(load_recipe(recipe))
        where = str(recipe)
    try:
        base = from_mapping(CompressConfig, data, where)
    except ConfigError:
        raise
    values = dataclasses.asdict(base)
    for k, v in (overrides or {}).items():
        if k not in values:
            raise UsageError(f"unknown option {k!r}")
        values[k] = v
    cfg = CompressConfig(**values)
    cfg.validate()
    return cfg
