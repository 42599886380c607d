"""Unstructured magnitude pruning with TFMOT while fine-tuning, then ``strip_pruning``.

Zeroed weights alone do not shrink a dense file or speed up this CNN; the
pipeline pairs this with int8 quantization (and structured pruning, which
physically removes filters) to pay off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgekit._tf import keras, tfmot
from edgekit.analyze.fakequant import is_nested
from edgekit.errors import FieldError, UsageError
from edgekit.models.files import copy_model
from edgekit.schema import Checked, option
from edgekit.train.trainer import MAGNITUDE_FINE_TUNE, FineTunePolicy, FitSettings, fine_tune

log = logging.getLogger(__name__)

PRUNABLE_LAYERS = ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D")

NM_AXIS: dict[str, int] = {
    # layer type → kernel axis along which TFMOT's N:M blocks run (the reduction / input-channel axis,
    # the axis sparse tensor cores need); other layer types stay dense under an N:M pattern.
    "Conv2D": 2,  # (h, w, in, out)
    "Dense": 0,  # (in, out)
}


@dataclass(frozen=True)
class MagnitudePruneConfig(Checked):
    """Settings of the ``prune.magnitude`` stage (registered in :mod:`edgekit.stages.prune`)."""

    sparsity: float = option(0.0, help="magnitude-pruning target sparsity "
                             "(0 = off; default: the budgeted prune chooses per layer)", ge=0, lt=1, flag="sparsity")
    schedule: Literal["polynomial", "constant"] = option("polynomial", help="sparsity schedule while fine-tuning",
                                                         flag="prune_schedule")
    pattern: str = option("", help="N:M sparsity such as 2:4 (at most N non-zeros in every M consecutive "
                          "input-channel weights) instead of a sparsity level", flag="sparsity_pattern")
    per_layer: dict[str, float] = option(default_factory=dict, help="layer name → sparsity, overriding --sparsity",
                                         ge=0, lt=1, flag="per_layer_sparsity")
    epochs: int = option(3, help="fine-tuning epochs for each pruning stage", ge=1, flag="prune_epochs")
    batch_size: int = option(64, help="fine-tuning batch size", ge=1, key="batch_size")
    learning_rate: float = option(1e-3, help="fine-tuning learning rate", gt=0, lt=1, key="learning_rate")
    augment: bool = option(False, help="augment images while fine-tuning", key="augment")

    def check(self) -> None:
        if self.pattern and parse_pattern(self.pattern) is None:
            raise FieldError("pattern", f"must be N:M with 0 < N < M (e.g. 2:4), got {self.pattern!r}")


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """'2:4' → (2, 4); None when malformed."""
    try:
        n, m = (int(p) for p in pattern.split(":"))
    except ValueError:
        return None
    return (n, m) if 0 < n < m else None


def _schedule(sparsity: float, end_step: int, kind: str) -> Any:
    s = tfmot().sparsity.keras
    freq = max(1, end_step // 20)
    if kind == "constant":
        return s.ConstantSparsity(sparsity, begin_step=0, frequency=freq)
    return s.PolynomialDecay(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=end_step,
                             frequency=freq)


def apply_pruning_wrappers(model: Any, cfg: MagnitudePruneConfig, total_steps: int) -> Any:
    """Wrap every prunable layer with TFMOT's ``prune_low_magnitude`` per ``cfg``.

    The wrappers take ``model``'s own layer objects (and so their weights): pass a copy.
    """
    k = keras()
    sk = tfmot().sparsity.keras
    end_step = max(1, int(total_steps * 0.7))  # reach the target, then recover for the last 30 %
    nm = parse_pattern(cfg.pattern) if cfg.pattern else None
    unknown = set(cfg.per_layer) - {name for name, _ in named_layers(model)}
    if unknown:
        raise UsageError(f"prune.per_layer: no layer named {sorted(unknown)[0]!r} in the model")
    qualified = {id(layer): name for name, layer in named_layers(model)}

    def wrap(layer: Any) -> Any:
        if is_nested(layer):  # a backbone used as a layer: its own layers are wrapped (names 'backbone/conv1')
            return k.models.clone_model(layer, clone_function=wrap)
        if type(layer).__name__ not in PRUNABLE_LAYERS:
            return layer
        if nm is not None:
            # TFMOT's (m, n) means m zeros in every n; ours (N:M) means N non-zeros in every M.
            if nm_skip_reason(layer, nm[1]):
                return layer
            return sk.prune_low_magnitude(layer, sparsity_m_by_n=(nm[1] - nm[0], nm[1]))
        s = cfg.per_layer.get(qualified.get(id(layer), layer.name), cfg.sparsity)
        if s <= 0:
            return layer
        return sk.prune_low_magnitude(layer, pruning_schedule=_schedule(s, end_step, cfg.schedule))

    return k.models.clone_model(model, clone_function=wrap)


def named_layers(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(qualified name, layer) of every layer, those inside nested Functional/Sequential models included
    (``backbone/conv1``, the names of the sensitivity analysis)."""
    out: list[tuple[str, Any]] = []
    for layer in model.layers:
        if is_nested(layer):
            out.extend(named_layers(layer, f"{prefix}{layer.name}/"))
        else:
            out.append((f"{prefix}{layer.name}", layer))
    return out


def magnitude_prune(model: Any, x: np.ndarray, y: np.ndarray, cfg: MagnitudePruneConfig, *,
                    validation: tuple[np.ndarray, np.ndarray] | None = None, from_logits: bool = False,
                    policy: FineTunePolicy = MAGNITUDE_FINE_TUNE) -> Any:
    """Prune ``model`` to ``cfg.sparsity`` while fine-tuning on (x, y) by ``policy`` (the unpruned ``model`` is the
    teacher when it distills); returns the stripped model."""
    sk = tfmot().sparsity.keras
    steps = -(-len(x) // cfg.batch_size) * cfg.epochs
    pruned = apply_pruning_wrappers(copy_model(model), cfg, steps)
    fine_tune(pruned, x, y, FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, from_logits),
              policy, teacher=model, validation=validation, callbacks=[sk.UpdatePruningStep()], label="pruning")
    return sk.strip_pruning(pruned)


def _kernel(layer: Any) -> np.ndarray | None:
    weights = layer.get_weights() if type(layer).__name__ in PRUNABLE_LAYERS else []
    return weights[0] if weights else None


def nm_skip_reason(layer: Any, m: int) -> str | None:
    """Why ``layer`` cannot take an N:M pattern with block size ``m`` (None if it can)."""
    kind = type(layer).__name__
    if kind not in NM_AXIS:
        return f"{kind}: N:M sparsity applies to {' and '.join(NM_AXIS)} layers only"
    kernel = _kernel(layer)
    if kernel is None:
        return "no kernel"
    size = kernel.shape[NM_AXIS[kind]]
    if size % m:
        return f"{size} input channels is not a multiple of {m}"
    return None


def nm_blocks_ok(kernel: np.ndarray, n: int, m: int, axis: int) -> bool:
    """True when every block of ``m`` consecutive weights along ``axis`` has at most ``n`` non-zeros."""
    if kernel.shape[axis] % m:
        return False
    blocks = np.moveaxis(kernel, axis, -1).reshape(-1, m)
    return bool(((blocks != 0).sum(axis=1) <= n).all())


def pruning_report(model: Any, pattern: str = "") -> dict[str, Any]:
    """Per-layer sparsity of a stripped model and, for an N:M pattern, whether each layer holds it."""
    layers: dict[str, Any] = {}
    nm = parse_pattern(pattern) if pattern else None
    for name, layer in named_layers(model):
        kernel = _kernel(layer)
        if kernel is None:
            continue
        entry: dict[str, Any] = {"sparsity": round(float((kernel == 0).mean()), 4), "params": int(kernel.size)}
        if nm is not None:
            skip = nm_skip_reason(layer, nm[1])
            entry["pattern"] = f"skipped: {skip}" if skip else (
                "holds" if nm_blocks_ok(kernel, nm[0], nm[1], NM_AXIS[type(layer).__name__]) else "broken")
        layers[name] = entry
    return layers


def kernel_sparsity(model: Any) -> float:
    """Fraction of exact zeros among the kernels of prunable layers."""
    zeros = total = 0
    for _, layer in named_layers(model):
        if type(layer).__name__ in PRUNABLE_LAYERS:
            for w in layer.get_weights()[:1]:
                zeros += int((w == 0).sum())
                total += w.size
    return zeros / total if total else 0.0
