"""CompressConfig: everything ``edgekit compress`` does, as flags, as a YAML recipe or from Python.

There is one config layer. Each stage's config dataclass (in :mod:`edgekit.stages`) is the single
source of its fields' defaults, ranges and help; ``CompressConfig`` declares the run-level
settings (data, targets, search) and re-exposes stage fields under their flat keys
(``sparsity``, ``qat_epochs``…, see :func:`stage_setting`), which are also the ``edgekit compress``
flags. A recipe may use the flat keys or the nested form, one table per stage section
(``prune: {sparsity: 0.5}``, ``qat: {learning_rate: 5e-5}``); stage fields without a flat key
live in ``stage_settings``. Values are coerced and checked in ``__post_init__`` (so Python
callers get the same checks as flags and recipes); flags given on the command line win over the
recipe. A bad value fails with one line naming the key (and the flag).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from edgekit.analyze.decide import DEFAULT_BUDGET_PP
from edgekit.errors import ConfigError, FieldError, UsageError
from edgekit.goals import GOALS
from edgekit.rundir import folder_problem
from edgekit.schema import Checked, coerce, flag_name, hints, option, short, suggest
from edgekit.stages import Stage, get_stage, quant_modes, stages

Group = Literal["data", "training", "pruning", "quantization", "search", "targets and benchmark", "output"]
GROUPS: tuple[str, ...] = get_args(Group)


def flag_owners() -> dict[str, tuple[Stage, dataclasses.Field[Any]]]:
    """Flat key → the stage field that owns it (declared with ``option(flag=...)``)."""
    owners: dict[str, tuple[Stage, dataclasses.Field[Any]]] = {}
    for stage in stages().values():
        for f in dataclasses.fields(stage.config_type):
            key = f.metadata.get("flag")
            if key and key in owners and owners[key][0].config_type is not stage.config_type:
                raise ValueError(f"flag {key!r} is owned by both {owners[key][0].name} and {stage.name}")
            if key:
                owners.setdefault(key, (stage, f))
    return owners


def stage_setting(key: str, unset: bool = False) -> Any:
    """A ``CompressConfig`` field whose default, range, choices and help are those of the stage field owning ``key``.

    ``unset``: the default is None ("not given"), so an explicit value can be told from the default.
    """
    stage, f = flag_owners()[key]
    meta = {k: v for k, v in f.metadata.items() if k not in ("key", "runtime")}
    if unset:
        meta.setdefault("group", stage.group)
        return dataclasses.field(default=None, metadata=meta)
    meta.setdefault("group", stage.group)
    tp = hints(stage.config_type)[f.name]
    if get_origin(tp) is Literal:
        meta["choices"] = get_args(tp)
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=meta)
    return dataclasses.field(default=f.default, metadata=meta)


def mode_names() -> tuple[str, ...]:
    """Every registered quantization mode (``--quantization`` choices)."""
    return tuple(quant_modes())


def _default_modes() -> tuple[str, ...]:
    return tuple(m for m, s in quant_modes().items() if s.default)


def _search_modes() -> tuple[str, ...]:
    return tuple(m for m, s in quant_modes().items() if s.search)


def _presets() -> tuple[str, ...]:
    from edgekit.compression.presets import PRESETS

    return tuple(PRESETS)


@dataclasses.dataclass(frozen=True)
class CompressConfig(Checked):
    """What one ``edgekit compress`` run does. Field names are the recipe keys and, with dashes, the flags."""

    # data
    dataset: str | None = option(None, group="data", help="mnist | fashion-mnist | digits "
                                 "(default: mnist, or digits when MNIST is unavailable)")
    data_dir: str | None = option(None, group="data", help="your data: IDX files, an .npz (x_train, y_train, x_test, "
                                  "y_test) or class-per-folder images")
    unlabeled_dir: str | None = option(None, group="data", help="unlabelled images (an .npz array, IDX images or a "
                                       "folder of images) never trained on: certify steps that train nothing on them")
    image_size: int = option(28, group="data", ge=1, help="image folders: resize to this square size")
    color: Literal["grayscale", "rgb"] = option("grayscale", group="data", help="image folders: colour mode")
    train_limit: int | None = option(None, group="data", ge=10, help="train on the first N training samples")
    test_limit: int | None = option(None, group="data", ge=1,
                                    help="evaluate on the first N test samples (default: all)")
    seed: int = stage_setting("seed")
    # training
    epochs: int = stage_setting("epochs")
    batch_size: int = stage_setting("batch_size")
    learning_rate: float = stage_setting("learning_rate")
    augment: bool = stage_setting("augment")
    model: str | None = option(None, group="training", help="compress this Keras model (.keras, .h5, SavedModel "
                               "with --trust-model; Keras 3 accepted); it is measured as brought and is the budget's "
                               "reference unless fine-tuning (--epochs) makes it better on validation")
    trust_model: bool = option(False, group="training", help="allow Lambda layers / custom code when loading --model")
    # pruning
    structured: float | None = stage_setting("structured", unset=True)
    structured_criterion: str = stage_setting("structured_criterion")
    mac_budget: float = stage_setting("mac_budget")
    sparsity: float | None = stage_setting("sparsity", unset=True)
    sparsity_pattern: str = stage_setting("sparsity_pattern")
    prune_schedule: str = stage_setting("prune_schedule")
    prune_epochs: int = stage_setting("prune_epochs")
    per_layer_sparsity: dict[str, float] = stage_setting("per_layer_sparsity")
    per_layer_structured: dict[str, float] = stage_setting("per_layer_structured")
    # quantization
    quantization: tuple[str, ...] = option(default_factory=_default_modes, choices=mode_names, group="quantization",
                                           help="quantization modes to produce")
    calibration: Literal["minmax", "entropy", "percentile"] = option("minmax", group="quantization",
                                                                     help="ONNX activation calibration")
    calibration_samples: int = stage_setting("calibration_samples")
    preset: str = option("", group="quantization",
                         help="ONNX quantization preset: avx2 | avx512_vnni | arm64 | tensorrt")
    int8_io: bool = stage_setting("int8_io")
    int8_per_channel: bool = stage_setting("int8_per_channel")
    qat_epochs: int = stage_setting("qat_epochs")
    # targets and benchmark
    targets: tuple[str, ...] = option((), group="targets and benchmark",
                                      help="device profiles to benchmark on (default: this CPU)")
    devices_dir: tuple[str, ...] = option((), group="targets and benchmark", help="extra folder of device profiles")
    bench_min_runs: int = option(200, group="targets and benchmark", ge=1,
                                 help="timed runs per benchmark cell, at least")
    bench_min_seconds: float = option(1.0, group="targets and benchmark", ge=0,
                                      help="seconds per benchmark cell, at least")
    bench: bool = option(True, group="targets and benchmark", help="run the benchmark")
    # search
    max_accuracy_drop: float = option(DEFAULT_BUDGET_PP, group="search", ge=0,
                                      help="the run's accuracy budget: validation-accuracy drop (pp) against the "
                                      "trained model that pruning and quantization may spend, always checked")
    confidence: float = option(0.95, group="search", gt=0.5, lt=1,
                               help="the budget's one-sided confidence: every file handed out is certified within the "
                               "budget at this level, jointly (weighted Holm) over all files certified")
    goal: str = option("default", group="search", choices=tuple(GOALS),
                       help="a preset of the settings left at their defaults: default | smallest (the smallest "
                       "file inside the budget: the budgeted pruning's attempts fine-tuned 10 epochs, 6 per kind, "
                       "per-tensor int8; edgekit.goals)")
    search: bool = option(False, group="search", help="search the recipe grid (search_*) within the budget")
    latency_target_ms: float | None = option(None, group="search", gt=0,
                                             help="search: p50 latency goal at batch 1, 1 thread")
    target: str = option("", group="search", help="search: the device profile the latency target refers to")
    search_structured: tuple[float, ...] = option((0.0, 0.25, 0.5), group="search", ge=0, lt=1,
                                                  help="search grid: structured ratios")
    search_sparsity: tuple[float, ...] = option((0.0, 0.8), group="search", ge=0, lt=1,
                                                help="search grid: magnitude sparsities")
    search_quantization: tuple[str, ...] = option(default_factory=_search_modes, choices=mode_names, group="search",
                                                  help="search grid: quantization modes")
    workers: int | None = option(None, group="search", ge=0,
                                 help="run the plan's independent chains (the search's candidates) in parallel on a "
                                 "local Ray with N workers (0: in process); default: one after another, no Ray")
    ray_address: str | None = option(None, group="search",
                                     help="run the chains on this Ray cluster (HOST:PORT); EDGEKIT_CACHE_DIR must be "
                                     "a folder every node shares")
    # output
    cache: bool = option(True, group="output", help="reuse finished stages from the artifact cache")
    cache_dir: str | None = option(None, group="output", help="the cache folder (default: EDGEKIT_CACHE_DIR, else "
                                   "~/.cache/edgekit); with --ray-address, a folder every node shares")
    # stage fields without a flat key, by recipe section (the nested form), e.g. {section: {field: value}}
    stage_settings: dict[str, dict[str, Any]] = option(default_factory=dict,
                                                       help="per-stage settings that have no flat key, by section")

    def __post_init__(self) -> None:
        if GOALS.get(self.goal):
            self._fill_goal()
        super().__post_init__()

    def _fill_goal(self) -> None:
        """Give the settings still at their defaults the goal's values (:mod:`edgekit.goals`); nested stage settings
        the run sets win over the goal's."""
        flat, nested = _split(GOALS[self.goal], f"goal {self.goal}")
        for f in dataclasses.fields(self):
            if f.name in flat:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                if getattr(self, f.name) == default:
                    object.__setattr__(self, f.name, flat[f.name])
        merged = {k: dict(v) for k, v in self.stage_settings.items()}
        for section, values in nested.items():
            merged[section] = {**values, **merged.get(section, {})}
        object.__setattr__(self, "stage_settings", merged)

    @classmethod
    def label(cls, f: dataclasses.Field[Any]) -> str:
        return flag_name(f.name)

    def check(self) -> None:
        if self.dataset is not None and self.data_dir is not None:
            raise UsageError("--dataset and --data-dir are mutually exclusive")
        if self.epochs < 1 and not self.model:
            raise FieldError("--epochs", f"must be at least 1, got {self.epochs}")
        if self.preset and self.preset not in _presets():
            raise FieldError("--preset", f"must be one of {', '.join(_presets())}, got {short(self.preset)}"
                             f"{suggest(self.preset, _presets())}")
        sections = {s.section: s for s in stages().values()}
        for section, values in self.stage_settings.items():
            if section not in sections:
                raise FieldError("stage_settings", f"unknown section {short(section)}{suggest(section, sections)} "
                                 f"(known: {', '.join(sections)})")
            nested = nested_fields(sections[section])
            for key in values:
                if key not in nested:
                    raise FieldError(f"{section}.{key}", "is not a setting of this section "
                                     f"({', '.join(nested) or 'it has none'}; shared settings use their flat keys)")
        for stage in stages().values():  # every stage's own rules, on the values this config gives it
            self.stage_config(stage.name)
        if self.model is not None and not Path(self.model).exists():
            raise UsageError(f"--model: {self.model} does not exist")
        if self.data_dir is not None and not Path(self.data_dir).exists():
            raise UsageError(f"--data-dir: {self.data_dir} does not exist")
        if self.ray_address is not None:
            from edgekit.executor import resolve_address

            resolve_address(self.ray_address)  # HOST:PORT, 'auto' or ray://… (raises naming --ray-address)
        if self.unlabeled_dir is not None and not Path(self.unlabeled_dir).exists():
            raise UsageError(f"--unlabeled-dir: {self.unlabeled_dir} does not exist")
        if self.cache_dir is not None:
            problem = folder_problem(Path(self.cache_dir)) if self.cache_dir.strip() else "must name a folder, got ''"
            if problem:
                raise FieldError("--cache-dir", problem)

    def stage_config(self, name: str, **runtime: Any) -> Any:
        """The config of stage ``name`` under this run: flat keys, then the stage's section, then its defaults.

        ``runtime`` fills the fields the pipeline knows (dataset fingerprint, model hash).
        """
        stage = get_stage(name)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(stage.config_type):
            key = f.metadata.get("flag") or f.metadata.get("key")
            if f.metadata.get("runtime"):
                if f.name in runtime:
                    values[f.name] = runtime[f.name]
            elif key and getattr(self, key, None) is not None:  # None: not set (no --model), the stage default applies
                values[f.name] = getattr(self, key)  # (a new stage's own flag has no field here: see stage_settings)
        values.update(self.stage_settings.get(stage.section, {}))
        try:
            return stage.configure(values, self) if stage.configure else stage.config_type(**values)
        except FieldError as e:
            raise FieldError(_stage_label(stage, e.field), e.problem) from None

    def explicit_pruning(self) -> list[str]:
        """The pruning flags the user set (``--sparsity``, ``--structured``, ``--mac-budget``,
        ``--per-layer-sparsity``, ``--per-layer-structured``, ``--sparsity-pattern``); none set: the budgeted prune
        decides."""
        given = {"sparsity": self.sparsity is not None, "structured": self.structured is not None,
                 "mac_budget": bool(self.mac_budget), "per_layer_sparsity": bool(self.per_layer_sparsity),
                 "per_layer_structured": bool(self.per_layer_structured),
                 "sparsity_pattern": bool(self.sparsity_pattern)}
        return [flag_name(k) for k, v in given.items() if v]

    def replace(self, **changes: Any) -> CompressConfig:
        return dataclasses.replace(self, **changes)


def _stage_label(stage: Stage, label: str) -> str:
    """A stage field's error label as the user wrote it: its flag (``--sparsity-pattern``) or ``section.field``."""
    for f in dataclasses.fields(stage.config_type):
        if label == f.name or label.startswith((f"{f.name}.", f"{f.name}[")):
            key = f.metadata.get("flag") or f.metadata.get("key")
            if key:
                return flag_name(key) + label[len(f.name):]
    return f"{stage.section}.{label}"


def nested_fields(stage: Stage) -> list[str]:
    """Fields of ``stage``'s config kept in ``stage_settings``: neither a ``CompressConfig`` field nor filled by
    the pipeline."""
    flat = {f.name for f in dataclasses.fields(CompressConfig)}
    return [f.name for f in dataclasses.fields(stage.config_type)
            if not (f.metadata.get("flag") in flat or f.metadata.get("key") or f.metadata.get("runtime"))]


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe into a mapping of CompressConfig keys (validated by :func:`make_config`)."""
    from edgekit.safe_yaml import load_yaml_bounded

    p = Path(path)
    data = load_yaml_bounded(p)  # bounded size/aliases/depth, UTF-8, safe tags only (a recipe is untrusted input)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a mapping of keys to values")
    return data


CONSENT_KEYS = frozenset({"trust_model"})
"""Keys that give consent (to run code stored in a model file): only the command line or a Python call
sets them, never a file. A recipe can be written by anyone (tune's recipe.yaml, a shared example)."""


def _refuse_consent(source: str, raw: str) -> None:
    """A recipe naming a consent key, anywhere, is refused with one line."""
    name = str(raw).rsplit(".", 1)[-1].replace("-", "_")
    if source and name in CONSENT_KEYS:
        raise ConfigError(f"{source}.{raw}: consent to run code from a model file comes only from the command line "
                          f"({flag_name(name)}) or the Python call, never from a file")


def _split(data: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Recipe keys or flags → (flat CompressConfig values, nested stage settings by section)."""
    fields = {f.name: f for f in dataclasses.fields(CompressConfig) if f.name != "stage_settings"}
    sections = {s.section: s for s in stages().values()}
    owners = flag_owners()

    def where(key: str) -> str:
        return f"{source}.{key}" if source else flag_name(key) if key in fields or key in owners else key

    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}

    def section(raw: str, stage: Stage, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where(raw)}: expected a table of {stage.name} settings, got {short(value)}")
        stage_fields = {f.name: f for f in dataclasses.fields(stage.config_type) if not f.metadata.get("runtime")}
        for sub, v in value.items():
            name = str(sub).replace("-", "_")
            _refuse_consent(source, f"{raw}.{sub}")
            if name not in stage_fields:
                raise ConfigError(f"{where(raw)}: unknown key {short(sub)}{suggest(name, stage_fields)} "
                                  f"(known: {', '.join(stage_fields) or 'none'})")
            meta = stage_fields[name].metadata
            if meta.get("key"):
                raise ConfigError(f"{where(f'{raw}.{sub}')}: a run-wide setting, set it with the "
                                  f"top-level key {meta['key']!r}")
            if meta.get("flag") in fields:
                flat[meta["flag"]] = coerce(hints(CompressConfig)[meta["flag"]], v, where(f"{raw}.{sub}"))
            else:
                nested.setdefault(stage.section, {})[name] = v

    for raw, value in data.items():
        key = str(raw).replace("-", "_")
        _refuse_consent(source, str(raw))
        if key in fields and not (key in sections and isinstance(value, Mapping)):
            flat[key] = coerce(hints(CompressConfig)[key], value, where(str(raw)))
        elif key in sections:
            section(str(raw), sections[key], value)
        elif key == "stage_settings" and isinstance(value, Mapping):  # the stored form (report.json's config)
            for name, values in value.items():
                if str(name) not in sections:
                    raise ConfigError(f"{where(str(raw))}: unknown section {short(name)}"
                                      f"{suggest(name, sections)} (known: {', '.join(sections)})")
                section(f"{raw}.{name}", sections[str(name)], values)
        elif key in owners:  # a stage's own flag without a CompressConfig field: kept in its section
            stage, f = owners[key]
            nested.setdefault(stage.section, {})[f.name] = value
        else:
            known = [*fields, *sections]
            raise ConfigError(f"{source or 'config'}: unknown key {short(raw)}{suggest(key, known)} "
                              f"(known: {', '.join(sorted(known))})")
    return flat, nested


def _apply(cfg: CompressConfig, data: Mapping[str, Any], source: str) -> CompressConfig:
    flat, nested = _split(data, source)
    settings = {k: dict(v) for k, v in cfg.stage_settings.items()}
    for section, values in nested.items():
        settings.setdefault(section, {}).update(values)
    try:
        return dataclasses.replace(cfg, **flat, stage_settings=settings)
    except UsageError as e:
        if source:
            raise ConfigError(f"{source}: {e}") from None
        raise


def make_config(recipe: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> CompressConfig:
    """A validated CompressConfig from an optional recipe file plus explicit overrides (flags, which win).

    Recipe values and flags take the same path: coerced to the field's type, then checked by
    ``CompressConfig.__post_init__``; errors name the file and key, or the flag.
    """
    cfg = CompressConfig()
    if recipe is not None:
        cfg = _apply(cfg, load_recipe(recipe), str(recipe))
    if overrides:
        cfg = _apply(cfg, overrides, "")
    return cfg
