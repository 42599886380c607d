"""The search space of ``edgekit tune``: which training keys vary, and over what.

A space maps recipe keys to a domain. In YAML (``--space FILE``)::

    learning_rate: {loguniform: [1.0e-4, 3.0e-3]}
    lr_schedule: [constant, cosine]        # a list is a choice
    label_smoothing: {uniform: [0.0, 0.15]}
    epochs: 8                              # a single value fixes the key

The user's keys replace the default space's; the others keep their defaults.
``freeze_layers`` (fine-tuning a ``--model``) is searched only with a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError
from edgekit.schema import suggest

# key → (type, help): the training settings a trial can vary (edgekit.train.trainer.FitSettings)
TUNABLE: dict[str, tuple[type, str]] = {
    "learning_rate": (float, "peak learning rate"),
    "lr_schedule": (str, "constant | cosine"),
    "warmup_epochs": (int, "linear warm-up epochs"),
    "batch_size": (int, "batch size"),
    "epochs": (int, "training epochs"),
    "augment_strength": (float, "augmentation strength (0 = off; 1 = shift 0.1, rotation 0.05, zoom 0.1)"),
    "label_smoothing": (float, "label smoothing in [0, 1)"),
    "weight_decay": (float, "AdamW decoupled weight decay (0 = Adam)"),
    "freeze_layers": (int, "fine-tuning: freeze this many leading layers with weights"),
}
KINDS = ("choice", "uniform", "loguniform")


@dataclass(frozen=True)
class Domain:
    """One key's domain: ``choice`` of values, or a ``uniform``/``loguniform`` range [low, high]."""

    kind: str
    values: tuple[Any, ...]

    def to_ray(self) -> Any:
        from ray import tune

        if self.kind == "choice":
            return self.values[0] if len(self.values) == 1 else tune.choice(list(self.values))
        low, high = self.values
        return tune.uniform(low, high) if self.kind == "uniform" else tune.loguniform(low, high)

    def largest(self) -> Any:
        return max(self.values)

    def to_dict(self) -> Any:
        if self.kind == "choice":
            return list(self.values) if len(self.values) > 1 else self.values[0]
        return {self.kind: list(self.values)}


def default_space(*, weighted_layers: int = 0) -> dict[str, Domain]:
    """The default space: around the reference recipe (Adam 1e-3, batch 64, 5 epochs).

    ``weighted_layers`` > 0 (a ``--model``) adds ``freeze_layers``: none, the first half, all but the head.
    """
    space = {
        "learning_rate": Domain("loguniform", (3e-4, 3e-3)),
        "lr_schedule": Domain("choice", ("constant", "cosine")),
        "warmup_epochs": Domain("choice", (0, 1)),
        "batch_size": Domain("choice", (32, 64, 128)),
        "epochs": Domain("choice", (5, 10, 15)),
        "augment_strength": Domain("choice", (0.0, 0.5, 1.0)),
        "label_smoothing": Domain("choice", (0.0, 0.05, 0.1)),
        "weight_decay": Domain("choice", (0.0, 0.004, 0.02)),
    }
    if weighted_layers > 1:
        space["freeze_layers"] = Domain("choice", tuple(sorted({0, weighted_layers // 2, weighted_layers - 1})))
    return space


def _coerce(key: str, value: Any, where: str) -> Any:
    typ = TUNABLE[key][0]
    if isinstance(value, bool) or (typ is str) != isinstance(value, str):
        raise ConfigError(f"{where}: {key}: expected {typ.__name__}, got {value!r}")
    if typ is int and not float(value).is_integer():
        raise ConfigError(f"{where}: {key}: expected an integer, got {value!r}")
    return typ(value)


def parse_domain(key: str, raw: Any, where: str) -> Domain:
    """One key's domain from YAML (value, list, or {uniform|loguniform|choice: [...]})."""
    if key not in TUNABLE:
        raise ConfigError(f"{where}: unknown key {key!r}{suggest(key, TUNABLE)} (tunable: {', '.join(TUNABLE)})")
    if isinstance(raw, Mapping):
        if len(raw) != 1 or next(iter(raw)) not in KINDS:
            raise ConfigError(f"{where}: {key}: expected one of {{{', '.join(KINDS)}: [...]}}, got {dict(raw)!r}")
        kind, values = next(iter(raw.items()))
    elif isinstance(raw, list):
        kind, values = "choice", raw
    else:
        kind, values = "choice", [raw]
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: {key}: expected a non-empty list of values")
    coerced = tuple(_coerce(key, v, where) for v in values)
    if kind != "choice":
        if TUNABLE[key][0] is not float or len(coerced) != 2 or not coerced[0] < coerced[1]:
            raise ConfigError(f"{where}: {key}: {kind} needs [low, high] numbers with low < high")
        if kind == "loguniform" and coerced[0] <= 0:
            raise ConfigError(f"{where}: {key}: loguniform needs low > 0")
    domain = Domain(kind, coerced)
    _check_range(key, domain, where)
    return domain


def _check_range(key: str, d: Domain, where: str) -> None:
    nums = [v for v in d.values if not isinstance(v, str)]
    bad = {
        "learning_rate": any(not 0 < v < 1 for v in nums),
        "lr_schedule": any(v not in ("constant", "cosine") for v in d.values),
        "warmup_epochs": any(v < 0 for v in nums),
        "batch_size": any(v < 1 for v in nums),
        "epochs": any(v < 1 for v in nums),
        "augment_strength": any(not 0 <= v <= 5 for v in nums),
        "label_smoothing": any(not 0 <= v < 1 for v in nums),
        "weight_decay": any(v < 0 for v in nums),
        "freeze_layers": any(v < 0 for v in nums),
    }[key]
    if bad:
        raise ConfigError(f"{where}: {key}: value out of range ({TUNABLE[key][1]}), got {d.to_dict()!r}")


def load_space(path: str | Path | None, *, weighted_layers: int = 0) -> dict[str, Domain]:
    """The default space with the keys of the YAML file at ``path`` replaced."""
    space = default_space(weighted_layers=weighted_layers)
    if path is None:
        return space
    from edgekit.safe_yaml import load_yaml_bounded

    p = Path(path)
    try:
        data = load_yaml_bounded(p)  # bounded size, aliases and depth; safe tags only (as recipes)
    except ConfigError as e:
        raise ConfigError(f"--space {e}") from None
    if data is None:
        return space
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a search space must be a mapping of keys to values")
    for key, raw in data.items():
        space[str(key)] = parse_domain(str(key), raw, str(p))
    return space


def max_epochs(space: Mapping[str, Domain]) -> int:
    """The most epochs any trial can run (ASHA's ``max_t``)."""
    return int(space["epochs"].largest()) if "epochs" in space else 5
