"""Report sections that other commands fill: per-layer sensitivity (``edgekit analyze``) and tuning (``edgekit tune``).

Both are optional in report.json; renderers draw them only when present.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from edgekit.report._fields import Json, Reader, show, written


@dataclass(frozen=True)
class QuantSensitivity:
    """The error int8 brings to one layer alone (on calibration data) and the accuracy it costs."""

    snr_db: float | None = None
    cosine: float | None = None
    drop_pp: float | None = None

    @classmethod
    def parse(cls, r: Reader) -> QuantSensitivity:
        return cls(snr_db=r.num("snr_db"), cosine=r.num("cosine"), drop_pp=r.num("drop_pp"))

    def to_dict(self) -> dict[str, Any]:
        return {"snr_db": self.snr_db, "cosine": self.cosine, "drop_pp": self.drop_pp}


def _drops(r: Reader, key: str) -> dict[str, float]:
    """A ``{"0.5": drop_pp, ...}`` map: keys are fractions, values numbers (null = not measured, dropped)."""
    raw = r.mapping(key) or {}
    out: dict[str, float] = {}
    for k, v in raw.items():
        try:
            frac = float(k)
        except ValueError:
            frac = math.nan
        if not (0.0 <= frac <= 1.0):
            r.fail(f"{key}.{k}", "expected a fraction in [0, 1] as the key")
        x = r.child(key, raw).num(str(k))
        if x is not None:
            out[str(k)] = x
    return out


@dataclass(frozen=True)
class LayerSensitivity:
    """One layer of ``edgekit analyze``: validation-accuracy drops (pp) by sparsity, filter fraction and int8."""

    name: str
    op: str = ""
    params: int | None = None
    macs: int | None = None
    prune: Mapping[str, float] = field(default_factory=dict)  # sparsity -> drop pp
    structured: Mapping[str, float] = field(default_factory=dict)  # filter fraction removed -> drop pp
    quant: QuantSensitivity | None = None
    protected: bool = False
    reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. prune_limit, int8_reason

    KEYS = ("name", "op", "params", "macs", "prune", "structured", "quant", "protected", "reason")

    @classmethod
    def parse(cls, r: Reader) -> LayerSensitivity:
        return cls(name=r.str_("name", required=True) or "", op=r.str_("op") or "", params=r.int_("params"),
                   macs=r.int_("macs"), prune=_drops(r, "prune"), structured=_drops(r, "structured"),
                   quant=r.record("quant", QuantSensitivity.parse), protected=r.bool_("protected"),
                   reason=r.str_("reason") or "", extra=r.extra(cls.KEYS))

    @property
    def worst_drop_pp(self) -> float:
        """The largest drop measured for this layer (0 when nothing was measured): how guilty it is."""
        drops = [*self.prune.values(), *self.structured.values()]
        if self.quant is not None and self.quant.drop_pp is not None:
            drops.append(self.quant.drop_pp)
        return max(drops, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "params": self.params, "macs": self.macs, "prune": dict(self.prune),
                "structured": dict(self.structured), "quant": self.quant.to_dict() if self.quant else None,
                "protected": self.protected, "reason": self.reason, **self.extra}


@dataclass(frozen=True)
class Analysis:
    """Per-layer sensitivity (``edgekit analyze``, also run inside ``compress``); validation data only."""

    layers: tuple[LayerSensitivity, ...] = ()
    budget_pp: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, r: Reader) -> Analysis:
        return cls(layers=r.records("layers", LayerSensitivity.parse), budget_pp=r.num("budget_pp"),
                   extra=r.extra(("layers", "budget_pp")))

    @classmethod
    def from_dict(cls, data: Json, source: str = "analysis") -> Analysis:
        return cls.parse(Reader(data, "", source))

    def guilty_first(self) -> list[LayerSensitivity]:
        """Layers by how much accuracy they cost, worst first (protected layers before others at a tie)."""
        return sorted(self.layers, key=lambda s: (-s.worst_drop_pp, not s.protected, s.name))

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [s.to_dict() for s in self.layers], "budget_pp": self.budget_pp, **self.extra}


@dataclass(frozen=True)
class Trial:
    """One hyper-parameter trial of ``edgekit tune``."""

    id: str
    status: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    val_accuracy: float | None = None
    epochs_run: int | None = None
    history: tuple[float, ...] = ()  # validation accuracy after each epoch
    test_accuracy: float | None = None  # measured once, for the best trial only
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. restarts, error, recipe
    present: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The keys the dict had: ``to_dict`` writes those back."""

    KEYS = ("id", "status", "config", "val_accuracy", "epochs_run", "history", "test_accuracy")

    @classmethod
    def parse(cls, r: Reader) -> Trial:
        tid = r.data.get("id")
        if isinstance(tid, bool) or not isinstance(tid, (str, int)):
            r.fail("id", f"expected a string or an integer, got {show(tid)}")
        return cls(id=str(tid), status=r.str_("status") or "", config=r.mapping("config") or {},
                   val_accuracy=r.num("val_accuracy"), epochs_run=r.int_("epochs_run"),
                   history=r.nums("history"), test_accuracy=r.num("test_accuracy"),
                   extra=r.extra(cls.KEYS), present=frozenset(k for k in cls.KEYS if r.has(k)))

    def to_dict(self) -> dict[str, Any]:
        values = {"id": self.id, "config": dict(self.config), "val_accuracy": self.val_accuracy,
                  "epochs_run": self.epochs_run, "history": list(self.history), "status": self.status,
                  "test_accuracy": self.test_accuracy}
        return {**written(values, self.present), **self.extra}


@dataclass(frozen=True)
class Executor:
    """Where a run's parallel work ran: report.json's ``executor`` (and the tune section's)."""

    kind: str = ""
    address: str | None = None
    nodes: int | None = None
    workers: int | None = None

    @classmethod
    def parse(cls, r: Reader) -> Executor:
        return cls(kind=r.str_("kind") or "", address=r.str_("address"), nodes=r.int_("nodes"), workers=r.int_("workers"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address, "nodes": self.nodes, "workers": self.workers}


EXECUTOR_KINDS = {"inprocess": "in this process", "local": "on an embedded Ray on this machine",
                  "ray": "on a Ray cluster"}
"""How each ``executor.kind`` (:mod:`edgekit.executor`) reads in the "Where it ran" section."""


def where_it_ran(ex: Executor) -> str:
    """One sentence: the executor's kind, address, nodes and workers (report.json's ``executor``)."""
    where = EXECUTOR_KINDS.get(ex.kind, f"on executor {ex.kind or 'unknown'!r}")
    counts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((ex.nodes, "node"), (ex.workers, "worker"))
              if n is not None]
    return (f"Ran {where}" + (f" at {ex.address}" if ex.address else "")
            + (f" ({', '.join(counts)})" if counts else "") + ".")


def where_it_ran_markdown(ex: Executor | None) -> list[str]:
    """report.md's "Where it ran" section (nothing for a report without an executor)."""
    return [] if ex is None else ["## Where it ran", "", where_it_ran(ex), ""]


def where_it_ran_html(ex: Executor | None) -> str:
    """report.html's "Where it ran" section (empty for a report without an executor)."""
    if ex is None:
        return ""
    return f'<section id="executor"><h2>Where it ran</h2><p>{html.escape(where_it_ran(ex))}</p></section>'


@dataclass(frozen=True)
class Tune:
    """The tuning section (``edgekit tune``): trials, the best one, and the executor."""

    trials: tuple[Trial, ...] = ()
    best: Trial | None = None
    executor: Executor | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, r: Reader) -> Tune:
        return cls(trials=r.records("trials", Trial.parse), best=r.record("best", Trial.parse),
                   executor=r.record("executor", Executor.parse), extra=r.extra(("trials", "best", "executor")))

    @classmethod
    def from_dict(cls, data: Json, source: str = "tune") -> Tune:
        return cls.parse(Reader(data, "", source))

    def to_dict(self) -> dict[str, Any]:
        return {"trials": [t.to_dict() for t in self.trials], "best": self.best.to_dict() if self.best else None,
                "executor": self.executor.to_dict() if self.executor else None, **self.extra}
