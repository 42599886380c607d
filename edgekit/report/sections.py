"""Records of the report's optional sections that other commands fill: per-layer sensitivity (``edgekit analyze``),
tuning (``edgekit tune``), where the parallel work ran (``executor``) and the accuracy budget (``budget``).

All are optional in report.json; :mod:`edgekit.report.document` draws them only when present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from edgekit.report._fields import Json, Record, fail, key, present, read, rest
from edgekit.schema import coerce


@dataclass(frozen=True)
class QuantSensitivity(Record):
    """The error int8 brings to one layer alone (on calibration data) and the accuracy it costs."""

    snr_db: float | None = key(None)
    cosine: float | None = key(None)
    drop_pp: float | None = key(None)
    extra: Mapping[str, Any] = rest()


def _drops(value: Any, where: str) -> dict[str, float]:
    """A ``{"0.5": drop_pp, ...}`` map: keys are fractions, values numbers (null = not measured, dropped)."""
    raw: dict[str, float | None] = coerce(dict[str, float | None], value, where)
    for k in raw:
        try:
            frac = float(k)
        except ValueError:
            frac = math.nan
        if not (0.0 <= frac <= 1.0):
            fail(where, str(k), "expected a fraction in [0, 1] as the key")
    return {k: v for k, v in raw.items() if v is not None}


@dataclass(frozen=True)
class LayerSensitivity(Record):
    """One layer of ``edgekit analyze``: validation-accuracy drops (pp) by sparsity, filter fraction and int8."""

    name: str = key()
    op: str = key("")
    params: int | None = key(None)
    macs: int | None = key(None)
    prune: Mapping[str, float] = key(default_factory=dict, read=_drops)  # sparsity -> drop pp
    structured: Mapping[str, float] = key(default_factory=dict, read=_drops)  # filter fraction removed -> drop pp
    quant: QuantSensitivity | None = key(None)
    protected: bool = key(False)
    reason: str = key("")
    extra: Mapping[str, Any] = rest()  # e.g. prune_limit, int8_reason

    @property
    def worst_drop_pp(self) -> float:
        """The largest drop measured for this layer (0 when nothing was measured): how guilty it is."""
        drops = [*self.prune.values(), *self.structured.values()]
        if self.quant is not None and self.quant.drop_pp is not None:
            drops.append(self.quant.drop_pp)
        return max(drops, default=0.0)


@dataclass(frozen=True)
class Analysis(Record):
    """Per-layer sensitivity (``edgekit analyze``, also run inside ``compress``); validation data only."""

    layers: tuple[LayerSensitivity, ...] = key(())
    budget_pp: float | None = key(None)
    extra: Mapping[str, Any] = rest()

    @classmethod
    def from_dict(cls, data: Json, source: str = "analysis") -> Analysis:
        return read(cls, data, source)

    def guilty_first(self) -> list[LayerSensitivity]:
        """Layers by how much accuracy they cost, worst first (protected layers before others at a tie)."""
        return sorted(self.layers, key=lambda s: (-s.worst_drop_pp, not s.protected, s.name))


def _trial_id(value: Any, where: str) -> str:
    """A trial id: a string, or an integer (Ray numbers its trials)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        fail(where, "", f"expected a string or an integer, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class Trial(Record):
    """One hyper-parameter trial of ``edgekit tune``."""

    id: str = key(read=_trial_id)
    status: str = key("")
    config: Mapping[str, Any] = key(default_factory=dict)
    val_accuracy: float | None = key(None)
    epochs_run: int | None = key(None)
    history: tuple[float, ...] = key(())  # validation accuracy after each epoch
    test_accuracy: float | None = key(None)  # measured once, for the best trial only
    extra: Mapping[str, Any] = rest()  # e.g. restarts, error, recipe
    present: frozenset[str] = present()
    """The keys the dict had: ``to_dict`` writes those back."""


@dataclass(frozen=True)
class Executor(Record):
    """Where a run's parallel work ran: report.json's ``executor`` (and the tune section's)."""

    kind: str = key("")
    address: str | None = key(None)
    nodes: int | None = key(None)
    workers: int | None = key(None)
    extra: Mapping[str, Any] = rest()


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


@dataclass(frozen=True)
class Tune(Record):
    """The tuning section (``edgekit tune``): trials, the best one, and the executor."""

    trials: tuple[Trial, ...] = key(())
    best: Trial | None = key(None)
    executor: Executor | None = key(None)
    extra: Mapping[str, Any] = rest()

    @classmethod
    def from_dict(cls, data: Json, source: str = "tune") -> Tune:
        return read(cls, data, source)


@dataclass(frozen=True)
class BudgetCheck(Record):
    """One file against the accuracy budget: its validation drop against the trained model, paired image by image,
    and the one-sided upper bound the chooser judges (:func:`edgekit.compression.budget.paired_drop_bound`)."""

    name: str = ""  # the file (the key of ``budget.checks``)
    drop_pp: float | None = key(None)
    bound_pp: float | None = key(None)
    validation_size: int | None = key(None)
    lost: int | None = key(None)
    gained: int | None = key(None)
    within_budget: bool = key(False)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class _Decision(Record):
    """What a budgeted stage did to one file (``budget.pruning.FILE.KIND``, ``budget.int8.FILE``)."""

    action: str | None = key(None)
    precision: str | None = key(None)
    drop_pp: float | None = key(None)
    reason: str | None = key(None)
    extra: Mapping[str, Any] = rest()

    def sentence(self, what: str) -> str:
        """``what``, the validation drop (when measured) and the reason: one line of the section's decisions."""
        drop = f", validation drop {pp_text(self.drop_pp)}" if self.drop_pp is not None else ""
        return f"{what}{drop}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class _Margin(Record):
    confidence: float | None = key(None)
    validation_size: int | None = key(None)
    method: str = key("")
    statement: str = key("")
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class _Explicit(Record):
    note: str = key("")
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class _Accuracies(Record):
    val_accuracy: float | None = key(None)
    accuracy: float | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class _FineTuning(Record):
    action: str | None = key(None)
    val_before: float | None = key(None)
    val_after: float | None = key(None)
    reason: str | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class _Reference(Record):
    """``budget.reference``: the model the budget is judged against (:func:`edgekit.pipeline.reference_record`)."""

    model: str = key("trained")
    val_accuracy: float | None = key(None)
    accuracy: float | None = key(None)
    as_brought: _Accuracies | None = key(None)
    fine_tuning: _FineTuning | None = key(None)
    extra: Mapping[str, Any] = rest()

    def lines(self) -> tuple[str, ...]:
        """The reference in words: the model judged against, the model as brought, what fine-tuning did."""
        which = "the model as brought" if self.model == "as brought" else f"the {self.model} model"
        lines = [f"Reference: {which} (validation {_pct(self.val_accuracy)}, test {_pct(self.accuracy)})."]
        if self.as_brought is not None:
            lines.append(f"As brought: validation {_pct(self.as_brought.val_accuracy)}, "
                         f"test {_pct(self.as_brought.accuracy)}.")
        fine = self.fine_tuning
        if fine is not None:
            change = (f" (validation {_pct(fine.val_before)} → {_pct(fine.val_after)})"
                      if fine.val_after is not None else "")
            lines.append(f"Fine-tuning {fine.action or '?'}{change}: {fine.reason or ''}")
        return tuple(lines)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.2f} %"


@dataclass(frozen=True)
class _BudgetData(Record):
    """report.json's ``budget`` as written (:func:`edgekit.pipeline._judge`)."""

    budget_pp: float | None = key(None)
    margin: _Margin | None = key(None)
    checks: Mapping[str, BudgetCheck] = key(default_factory=dict)
    pruning: Mapping[str, Mapping[str, _Decision] | None] = key(default_factory=dict)
    int8: Mapping[str, _Decision] = key(default_factory=dict)
    explicit: tuple[_Explicit, ...] = key(())
    excluded: Mapping[str, str] = key(default_factory=dict)
    notes: tuple[str, ...] = key(())
    reference: _Reference | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class Budget:
    """report.json's ``budget`` (written by :func:`edgekit.pipeline._judge`): the budget, its statistical margin,
    each file's check, what the budgeted stages decided, explicit values, exclusions and within-budget notes."""

    budget_pp: float | None = None
    confidence: float | None = None
    validation_size: int | None = None
    method: str = ""
    statement: str = ""  # what this data can certify (edgekit.rules.margin)
    checks: tuple[BudgetCheck, ...] = ()
    decisions: tuple[tuple[str, str], ...] = ()  # (file, sentence): budgeted pruning and int8
    explicit: tuple[str, ...] = ()
    excluded: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    reference: tuple[str, ...] = ()  # what the budget is judged against: the model as brought, fine-tuning's fate

    @classmethod
    def from_dict(cls, data: Json, source: str = "report.json") -> Budget:
        d = read(_BudgetData, data, source, "budget")
        margin = d.margin or _Margin()
        decisions = [(name, dec.sentence(f"{kind} pruning {dec.action or '?'}"))
                     for name, kinds in d.pruning.items() for kind, dec in (kinds or {}).items()]
        decisions += [(name, dec.sentence(f"int8 {dec.action or '?'} ({dec.precision or '?'})"))
                      for name, dec in d.int8.items()]
        return cls(budget_pp=d.budget_pp, confidence=margin.confidence, validation_size=margin.validation_size,
                   method=margin.method, statement=margin.statement,
                   checks=tuple(replace(c, name=str(k)) for k, c in d.checks.items()),
                   decisions=tuple(decisions), explicit=tuple(e.note for e in d.explicit if e.note),
                   excluded=dict(d.excluded), notes=d.notes,
                   reference=d.reference.lines() if d.reference else ())

    def rule(self) -> str:
        """One sentence: the budget and how it is judged."""
        budget = f"{self.budget_pp:g} pp" if self.budget_pp is not None else "the budget"
        margin = (f", certified by the one-sided {self.confidence * 100:g} % upper confidence bound of the drop "
                  f"({self.method}; {self.validation_size} certification images)"
                  if self.confidence is not None else "")
        statement = f" {self.statement[0].upper()}{self.statement[1:]}." if self.statement else ""
        against = "the reference model" if self.reference else "the trained model"
        return f"Budget: {budget} of accuracy against {against}{margin}.{statement}"


def pp_text(x: float | None) -> str:
    """A change in percentage points, signed (a dash for none)."""
    return "–" if x is None else f"{x:+.2f} pp"
