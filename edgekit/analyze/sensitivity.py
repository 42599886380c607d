"""Per-layer sensitivity of a tf_keras model: what magnitude pruning, filter removal and int8 cost each layer.

One layer at a time, no fine-tuning (fast): the validation-accuracy drop (pp) with
only that layer pruned to each sparsity, with a fraction of its filters removed,
and with only that layer in simulated int8 (:mod:`edgekit.analyze.fakequant`), plus
the int8 error of its output (SNR dB, cosine) on calibration data. Validation data
only: the test set stays for the reported accuracy.

The result is a JSON-able dict ``{"layers": [...], "budget_pp": ...}``, guiltiest layer
first; ``protected`` marks the layers the mixed-precision rule keeps out of int8. Layers inside
a nested Functional/Sequential model are rows of their own, named ``backbone/conv1``; filter
removal cannot act on them (their row says so). With an executor (``--workers``/``--ray-address``)
the layers are measured on Ray workers, one task per layer, with the same numbers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgekit.analyze.decide import (
    DEFAULT_BUDGET_PP,
    choose_int8_protection,
    guilt,
    largest_level_within,
    next_int8_protection,
)
from edgekit.errors import UsageError
from edgekit.rules.bounds import within_budget

log = logging.getLogger(__name__)

PRUNE_KERNEL: dict[str, int] = {
    # layer type → index in get_weights() of the kernel magnitude pruning zeroes (TFMOT's choice:
    # the pointwise kernel of a SeparableConv2D, the depthwise kernel of a DepthwiseConv2D)
    "Conv2D": 0,
    "Dense": 0,
    "DepthwiseConv2D": 0,
    "SeparableConv2D": 1,
}


@dataclass(frozen=True)
class SensitivityConfig:
    """What the analysis measures."""

    sparsities: tuple[float, ...] = field(default=(0.3, 0.5, 0.7, 0.8, 0.9), metadata={
        "help": "magnitude sparsities tried on each layer"})
    structured: tuple[float, ...] = field(default=(0.125, 0.25, 0.5), metadata={
        "help": "fractions of each layer's filters removed"})
    calibration_samples: int = field(default=256, metadata={"help": "training images that calibrate int8 ranges"})
    budget_pp: float = field(default=DEFAULT_BUDGET_PP, metadata={"help": "validation accuracy budget, pp"})
    per_channel: bool = field(default=True, metadata={"help": "int8 weights with one scale per output channel"})
    verify_int8: bool = field(default=True, metadata={
        "help": "check the protected set with every other layer in simulated int8 at once, protecting more if needed"})

    def validate(self, where: str = "analyze") -> None:
        for name, levels in (("sparsities", self.sparsities), ("structured", self.structured)):
            if any(not 0.0 < v < 1.0 for v in levels):
                raise UsageError(f"{where}.{name}: every value must be in (0, 1), got {list(levels)}")
        if self.calibration_samples < 1:
            raise UsageError(f"{where}.calibration_samples: must be at least 1, got {self.calibration_samples}")
        if self.budget_pp < 0:
            raise UsageError(f"{where}.budget_pp: must not be negative, got {self.budget_pp}")


NESTED_SKIP = "it sits inside a nested model: filter removal rebuilds top-level layers only"


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(scores).argmax(axis=1) == np.asarray(y)).mean())


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    from edgekit.train.trainer import predict

    return predict(model, x)


def _key(level: float) -> str:
    return f"{level:g}"


def magnitude_mask(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """``kernel`` with its ``sparsity`` fraction of smallest-magnitude weights set to zero (ties: lower index first)."""
    flat = np.asarray(kernel).ravel()
    n = int(round(sparsity * flat.size))
    out = flat.copy()
    if n > 0:
        out[np.argsort(np.abs(flat), kind="stable")[:n]] = 0.0
    return out.reshape(np.asarray(kernel).shape)


def prune_drops(model: Any, x_val: np.ndarray, y_val: np.ndarray, base_acc: float, layer: Any,
                sparsities: tuple[float, ...]) -> dict[str, float]:
    """Validation drop (pp) with only ``layer``'s kernel magnitude-pruned to each sparsity (weights restored after)."""
    index = PRUNE_KERNEL[type(layer).__name__]
    original = layer.get_weights()
    drops = {}
    try:
        for s in sparsities:
            weights = list(original)
            weights[index] = magnitude_mask(original[index], s)
            layer.set_weights(weights)
            drops[_key(s)] = round((base_acc - accuracy(_predict(model, x_val), y_val)) * 100.0, 3)
    finally:
        layer.set_weights(original)
    return drops


def structured_drops(model: Any, x_val: np.ndarray, y_val: np.ndarray, base_acc: float, name: str,
                     fractions: tuple[float, ...]) -> dict[str, float]:
    """Validation drop (pp) with only layer ``name``'s lowest-L1 filters removed (model rebuilt, no fine-tuning);
    for a source coupled to others through residual joins, with its group's channels removed."""
    from edgekit.compression.structured import prune_structured

    drops = {}
    quiet = logging.getLogger("edgekit.compression.structured")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))  # one INFO line per rebuild would drown the table
    try:
        for f in fractions:
            pruned = prune_structured(model, per_layer={name: f}).model
            drops[_key(f)] = round((base_acc - accuracy(_predict(pruned, x_val), y_val)) * 100.0, 3)
    finally:
        quiet.setLevel(level)
    return drops


def _rounded(v: float, digits: int = 3) -> float | None:
    return None if not np.isfinite(v) else round(float(v), digits)


def measure_layer(model: Any, fq: Any, name: str, layer: Any, x_val: np.ndarray, y_val: np.ndarray, base_acc: float,
                  cfg: SensitivityConfig, problem: str | None, cost: dict[str, Any], bar: Any = None) -> dict[str, Any]:
    """One row of the table: ``layer``'s (qualified ``name``) pruning, filter-removal and int8 drops (the model
    is left unchanged). ``problem``: why its filters cannot be removed (None: they can); ``cost``: its params/MACs.
    """
    prune = prune_drops(model, x_val, y_val, base_acc, layer, cfg.sparsities)
    if bar is not None:
        bar.advance(len(cfg.sparsities))
    structured = {} if problem else structured_drops(model, x_val, y_val, base_acc, name, cfg.structured)
    if bar is not None:
        bar.advance(len(cfg.structured))
    fq.set_int8([name])
    q_acc = accuracy(fq.predict(x_val), y_val)
    snr, cos = fq.layer_error(name)
    if bar is not None:
        bar.advance()
    row: dict[str, Any] = {
        "name": name, "op": type(layer).__name__,
        "params": int(cost.get("params", layer.count_params())),
        "macs": int(cost.get("macs", 0)),
        "prune": prune, "structured": structured,
        "quant": {"snr_db": _rounded(snr, 2), "cosine": _rounded(cos, 6),
                  "drop_pp": round((base_acc - q_acc) * 100.0, 3)},
        "protected": False, "reason": "",
    }
    if problem:
        row["structured_skip"] = problem
    return row


def analyze_model(model: Any, x_val: np.ndarray, y_val: np.ndarray, x_calib: np.ndarray,
                  cfg: SensitivityConfig | None = None, executor: Any = None) -> dict[str, Any]:
    """Per-layer sensitivity of ``model`` (tf_keras, softmax or logits output) on validation data.

    ``x_calib`` (training images) calibrates the simulated int8 ranges and measures each
    layer's int8 output error. The model is not changed. ``executor`` (default: the one
    :func:`edgekit.analyze.parallel.analysis_executor` set, else none) fans the layers out over
    Ray workers, one task per layer, with the same numbers as in process.
    """
    from edgekit.analyze.fakequant import FakeQuantModel, quantizable
    from edgekit.analyze.parallel import current_executor, fans_out
    from edgekit.compression.structured import removable_sources
    from edgekit.console import progress
    from edgekit.models.flops import layer_costs

    cfg = cfg or SensitivityConfig()
    cfg.validate()
    ex = executor if executor is not None else current_executor()
    started = time.perf_counter()
    calib = x_calib[: cfg.calibration_samples]
    base_acc = accuracy(_predict(model, x_val), y_val)
    by_name = {row["name"]: row for row in layer_costs(model)}  # nested layers by their own name
    layers = quantizable(model)
    costs = {name: by_name.get(name) or by_name.get(layer.name, {}) for name, layer in layers}
    try:
        removable = removable_sources(model, one_per_group=True)  # a coupled group is measured on one row
    except Exception as e:  # noqa: BLE001 - a model structured pruning cannot read still gets the rest
        log.info("structured analysis skipped: %s", e)
        removable = {name: f"the model graph cannot be read ({e})" for name, _ in layers}
    problems = {name: removable.get(name, NESTED_SKIP if "/" in name else "it is not a filter/unit source")
                for name, _ in layers}
    fq = FakeQuantModel(model, calib, per_channel=cfg.per_channel)
    if fans_out(ex) and layers and _portable(model):
        rows = _fan_out(ex, model, layers, x_val, y_val, calib, base_acc, cfg, problems, costs)
    else:
        steps = len(layers) * (len(cfg.sparsities) + len(cfg.structured) + 1)
        with progress("analyzing layers", steps) as bar:
            rows = [measure_layer(model, fq, name, layer, x_val, y_val, base_acc, cfg, problems[name], costs[name], bar)
                    for name, layer in layers]
    protected = choose_int8_protection(rows, cfg.budget_pp, share=1.0 if cfg.verify_int8 else 0.5,
                                       additive=not cfg.verify_int8)
    all_int8_drop = None
    if cfg.verify_int8 and rows:
        protected, all_int8_drop = verify_protection(fq, rows, protected, x_val, y_val, base_acc, cfg.budget_pp)
    for row in rows:
        row["prune_limit"] = largest_level_within(row["prune"], cfg.budget_pp)
        if row["structured"]:
            row["structured_limit"] = largest_level_within(row["structured"], cfg.budget_pp)
        row["protected"] = row["name"] in protected
        if row["protected"]:
            row["int8_reason"] = protected[row["name"]]
        notes = [protected[row["name"]] + ": kept in higher precision"] if row["protected"] else []
        if cfg.sparsities and row["prune_limit"] == 0.0:
            notes.append(f"magnitude pruning at {min(cfg.sparsities):g} alone breaks the budget")
        if row.get("structured_skip") == NESTED_SKIP and cfg.structured:
            notes.append(f"filter removal not acted on: {NESTED_SKIP}")
        row["reason"] = "; ".join(notes)
    rows.sort(key=lambda r: (not r["protected"], -guilt(r)))
    return {
        "layers": rows,
        "budget_pp": cfg.budget_pp,
        "baseline_val_accuracy": round(base_acc, 6),
        "val_samples": int(len(y_val)),
        "calibration_samples": int(len(calib)),
        "int8_all_drop_pp": all_int8_drop,
        "protected": sorted(protected),
        "settings": asdict(cfg),
        "seconds": round(time.perf_counter() - started, 2),
    }


def verify_protection(fq: Any, rows: list[dict[str, Any]], protected: dict[str, str], x_val: np.ndarray,
                      y_val: np.ndarray, base_acc: float, budget_pp: float) -> tuple[dict[str, str], float]:
    """Run every unprotected layer in simulated int8 at once; protect the next guiltiest layer while the
    validation drop breaks the budget. Returns the protected layers and the final simulated drop (pp)."""
    protected = dict(protected)
    while True:
        fq.set_int8([r["name"] for r in rows if r["name"] not in protected])
        drop = round((base_acc - accuracy(fq.predict(x_val), y_val)) * 100.0, 3)
        nxt = next_int8_protection(rows, protected)
        if within_budget(drop, budget_pp) or nxt is None:
            fq.set_int8(())
            return protected, drop
        protected[nxt] = (f"with the other layers in int8 the model loses {drop:.2f} pp (> {budget_pp:g} pp); "
                          f"this is the guiltiest layer left")


def analyze_dataset(model: Any, dataset: Any, cfg: SensitivityConfig | None = None,
                    executor: Any = None) -> dict[str, Any]:
    """:func:`analyze_model` on a :class:`edgekit.data.datasets.Dataset` (validation split, training calibration
    images)."""
    cfg = cfg or SensitivityConfig()
    result = analyze_model(model, dataset.x_val, dataset.y_val, dataset.calibration(cfg.calibration_samples), cfg,
                           executor=executor)
    result["dataset"] = dataset.name
    return result


# ---- fan-out over the executor (``--workers N`` / ``--ray-address``)

@dataclass(frozen=True)
class LayerTask:
    """One task: some layers of one model, measured on a worker (the model travels by content hash)."""

    model: Any  # edgekit.executor.FileRef of the model saved as .keras
    data: Any  # edgekit.executor.Shared of (x_val, y_val, calibration images)
    data_key: str  # sha256 of those arrays: a worker reuses its loaded model and simulated-int8 copy
    cfg: SensitivityConfig
    base_acc: float  # the driver's, so every task measures drops against the same figure
    names: tuple[str, ...]
    problems: tuple[tuple[str, str | None], ...]  # layer → why its filters cannot be removed (None: they can)
    costs: tuple[tuple[str, int, int], ...]  # layer, params, MACs


_WORKER_STATE: dict[str, tuple[Any, Any]] = {}  # on a worker: (model, FakeQuantModel) of the last model it measured


def measure_layers(task: LayerTask) -> list[dict[str, Any]]:
    """On a worker: :func:`measure_layer` for each layer of the task, in order."""
    from edgekit.analyze.fakequant import FakeQuantModel, find_layer
    from edgekit.models.files import load_keras_file

    x_val, y_val, calib = task.data.get()
    key = f"{task.model.sha256}:{task.data_key}:{task.cfg.per_channel}"
    if key not in _WORKER_STATE:
        _WORKER_STATE.clear()  # one model at a time: a worker serves one analysis
        model = load_keras_file(task.model.local_path())
        _WORKER_STATE[key] = (model, FakeQuantModel(model, calib, per_channel=task.cfg.per_channel))
    model, fq = _WORKER_STATE[key]
    problems, costs = dict(task.problems), {n: {"params": p, "macs": m} for n, p, m in task.costs}
    return [measure_layer(model, fq, name, find_layer(model, name), x_val, y_val, task.base_acc, task.cfg,
                          problems[name], costs.get(name, {})) for name in task.names]


def _portable(model: Any) -> bool:
    """Whether a worker can load the model from a .keras file: built-in layers only, no Lambda (its code stays here)."""
    from edgekit.models.safety import CODE_CLASSES

    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        module = type(layer).__module__
        if type(layer).__name__ in CODE_CLASSES or not module.startswith(("keras.", "tf_keras.")):
            log.info("analysis in this process: %s (%s) cannot be rebuilt on a worker", layer.name,
                     type(layer).__name__)
            return False
        stack.extend(getattr(layer, "layers", []))
    return True


def _fan_out(ex: Any, model: Any, layers: list[tuple[str, Any]], x_val: np.ndarray, y_val: np.ndarray,
             calib: np.ndarray, base_acc: float, cfg: SensitivityConfig, problems: dict[str, str | None],
             costs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows measured on the executor's workers, one task per layer, in layer order."""
    import hashlib
    import tempfile
    from pathlib import Path

    from edgekit.models.files import save_keras

    with tempfile.TemporaryDirectory(prefix="edgekit-analysis-") as tmp:
        ref = ex.share(save_keras(model, Path(tmp) / "model.keras"))
    digest = hashlib.sha256()
    for a in (x_val, y_val, calib):
        digest.update(np.ascontiguousarray(a).tobytes())
    data = ex.put((x_val, y_val, calib))
    cost_rows = tuple((name, int(costs[name].get("params", layer.count_params())), int(costs[name].get("macs", 0)))
                      for name, layer in layers)
    tasks = [LayerTask(ref, data, digest.hexdigest(), cfg, base_acc, (name,), ((name, problems[name]),), cost_rows)
             for name, _ in layers]
    log.info("analysis: %d layer(s) on %s (%d worker(s))", len(tasks), ex.kind, ex.workers)
    results = ex.map(measure_layers, tasks)
    return [row for rows in results for row in rows]
