"""The stage registry: every step a pipeline can run, declared next to its code.

A stage module in this package defines its config dataclass (fields, defaults, ranges and help via
:func:`edgekit.schema.option`) and its run function, and registers the function with
:func:`register_stage` right below the config, giving everything the rest of edgekit derives
from it: the CLI/recipe quantization mode, the formats consumed → produced, the output
precision, whether the output is checked for parity against its parent, and the steps a mode adds
to the plan (:class:`Emit`). The plan, ``CompressConfig``'s quantization modes, the ``--help``
text and the parity checks all read this table, so adding a quantizer is one module here::

    @dataclass(frozen=True)
    class Int2Config(Checked):
        group_size: int = option(32, help="weights per scale", ge=8)

    @register_stage("quantize.int2", Int2Config, consumes={"keras": "tflite"}, precision="mixed",
                    mode="ptq-int2", parity=True, steps=(Emit("int2-tflite"),), description="int2 weights")
    def run_int2(parent, cfg, ctx, out): ...

Run functions take ``(parent, config, ctx, out_path)`` and return a :class:`StageOutput`; they
import TensorFlow (and anything heavy) inside, so loading the table costs no TensorFlow import.
Every module of this package is imported when the table is first read.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgekit.artifact import Artifact, Format
from edgekit.errors import UsageError


@dataclass
class Context:
    """What stages share within one run: the data, the work folder, loaded models."""

    dataset: Any  # edgekit.data.datasets.Dataset
    workdir: Path  # where a stage writes its output before the cache takes it
    seed: int = 0
    models: dict[str, Any] = field(default_factory=dict)  # artifact id → in-memory Keras model
    artifacts: dict[str, Artifact] = field(default_factory=dict)  # artifact id → artifact made so far in this run
    reference_val_accuracy: float | None = None  # the trained model's validation accuracy: budgets are cumulative
    reference_correct: Any = None  # the trained model's per-image validation correctness: budget checks pair with it

    def keras_ancestor(self, artifact: Artifact) -> Artifact | None:
        """The nearest Keras artifact at or above ``artifact`` among those made in this run."""
        current: Artifact | None = artifact
        while current is not None and current.format != "keras":
            current = self.artifacts.get(current.parent_id) if current.parent_id else None
        return current

    def keras_model(self, artifact: Artifact) -> Any:
        """The Keras model of ``artifact``, loaded once."""
        if artifact.id not in self.models:
            from edgekit.models.files import load_keras_file

            self.models[artifact.id] = load_keras_file(artifact.path)
        return self.models[artifact.id]


class Skipped(Exception):
    """Raised by a stage that has nothing to add (its output would repeat another step's): the step, and every
    step made from it, is left out of the run; the message says why."""


@dataclass
class StageOutput:
    """What a stage returns after writing its model file to the path it was given."""

    metrics: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # the in-memory Keras model, for Keras outputs
    made_from: Artifact | None = None  # the model it derives from, when not the step's input (its parent_id)


def inherited_metrics(parent: Artifact) -> dict[str, Any]:
    """What a conversion's output inherits from its parent: the output activation and the sparsity."""
    return {k: parent.metrics[k] for k in ("output", "sparsity") if k in parent.metrics}


def outputs_logits(parent: Artifact) -> bool:
    """Whether the parent model ends in logits rather than softmax (the loss must know)."""
    return parent.metrics.get("output") == "logits"


StageFn = Callable[[Artifact | None, Any, Context, Path], StageOutput]


@dataclass(frozen=True)
class Emit:
    """One step a quantization mode adds to the plan, named ``<prefix>-<suffix>`` (e.g. ``pruned-int8-onnx``).

    ``input``: what the step consumes -- the Keras model of the prefix, its fp32 ONNX export, or
    the step emitted just before. ``stage``: run another stage on it (e.g. ``export.onnx`` of the
    mode's TFLite output); empty for the mode's own stage.
    """

    suffix: str
    input: Literal["keras", "onnx", "previous"] = "keras"
    stage: str = ""


@dataclass(frozen=True)
class Prune:
    """Where a Keras → Keras stage sits in the plan's chain (pruning runs in ``order``).

    ``active(config)`` says whether a config asks for the stage; ``label(config, search)`` names its
    step (with the setting in the name inside a search grid, e.g. ``structured50``).
    """

    order: int
    active: Callable[[Any], bool]
    label: Callable[[Any, bool], str]


@dataclass(frozen=True)
class Stage:
    """One registered stage and what the rest of edgekit derives from it."""

    name: str
    config_type: type
    run: StageFn
    produces: Mapping[str, Format]  # input format ("" for a source stage) → output format
    precision: str  # of the output: fp32 | fp16 | int8 | mixed, or "parent" (a conversion keeps it)
    description: str
    parity: bool = False  # the output must numerically follow its parent (conversions, post-training quantization)
    mode: str = ""  # quantization mode name on the CLI / in recipes; "" when not a quantization mode
    steps: tuple[Emit, ...] = ()  # what the mode adds to the plan
    default: bool = False  # part of the default --quantization
    search: bool = False  # part of the default search grid (search_quantization)
    prune: Prune | None = None
    section: str = ""  # recipe key of the nested form (``prune: {sparsity: 0.5}``)
    group: str = ""  # --help group of its flags
    configure: Callable[[dict[str, Any], Any], Any] | None = None  # (settings, CompressConfig) → config

    def output_format(self, input_format: str | None) -> Format:
        key = input_format or ""
        if key not in self.produces:
            raise UsageError(f"stage {self.name} cannot take a {input_format or 'missing'} input "
                             f"(takes {', '.join(k or 'nothing' for k in self.produces)})")
        return self.produces[key]

    def output_precision(self, parent: Artifact | None) -> str:
        if self.precision != "parent":
            return self.precision
        return parent.precision if parent is not None else "fp32"


_STAGES: dict[str, Stage] = {}
_LOADED = False


def register_stage(name: str, config_type: type, *, consumes: Mapping[str, Format], precision: str, description: str,
                   parity: bool = False, mode: str = "", steps: tuple[Emit, ...] = (), default: bool = False,
                   search: bool = False, prune: Prune | None = None, section: str = "", group: str = "",
                   configure: Callable[[dict[str, Any], Any], Any] | None = None) -> Callable[[StageFn], StageFn]:
    """Decorator registering a run function as stage ``name`` with its metadata (see the module docstring)."""

    def deco(fn: StageFn) -> StageFn:
        stage = Stage(name, config_type, fn, dict(consumes), precision, description, parity, mode, tuple(steps),
                      default, search, prune, section or (mode or name).replace("-", "_").replace(".", "_"),
                      group or ("quantization" if mode else "pruning" if prune else ""), configure)
        add_stage(stage)
        return fn

    return deco


def add_stage(stage: Stage) -> None:
    """Add ``stage`` to the table; a name or mode already taken by another stage is an error."""
    stages()  # the built-in stages first, so a clash with one is seen
    old = _STAGES.get(stage.name)
    if old is not None and old.run is not stage.run:
        raise ValueError(f"stage {stage.name!r} is registered twice")
    clash = [s.name for s in _STAGES.values() if stage.mode and s.mode == stage.mode and s.name != stage.name]
    if clash:
        raise ValueError(f"quantization mode {stage.mode!r} is taken by stage {clash[0]!r}")
    _STAGES[stage.name] = stage


def remove_stage(name: str) -> None:
    """Drop a stage from the table (tests that register an example stage clean up with this)."""
    _STAGES.pop(name, None)


def stages() -> dict[str, Stage]:
    """Every stage, by name, in registration order (the one stage table)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{info.name}")
    return _STAGES


def get_stage(name: str) -> Stage:
    table = stages()
    if name not in table:
        raise UsageError(f"unknown stage {name!r} (known: {', '.join(table)})")
    return table[name]


def quant_modes() -> dict[str, Stage]:
    """Quantization mode name (``--quantization``, recipes) → its stage; the default modes first."""
    modes = [s for s in stages().values() if s.mode]
    return {s.mode: s for s in sorted(modes, key=lambda s: not s.default)}


def parity_stages() -> frozenset[str]:
    """Names of the stages whose output is checked against its parent."""
    return frozenset(s.name for s in stages().values() if s.parity)


def prune_stages() -> list[Stage]:
    """Keras → Keras stages of the plan's chain, in the order they run."""
    return sorted((s for s in stages().values() if s.prune), key=lambda s: s.prune.order)  # type: ignore[union-attr]
