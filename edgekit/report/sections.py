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


@dataclass(frozen=True)
class BudgetCheck:
    """One file against the accuracy budget: its validation drop against the trained model, paired image by image,
    and the one-sided upper bound the chooser judges (:func:`edgekit.compression.budget.paired_drop_bound`)."""

    name: str
    drop_pp: float | None = None
    bound_pp: float | None = None
    validation_size: int | None = None
    lost: int | None = None
    gained: int | None = None
    within_budget: bool = False

    @classmethod
    def parse(cls, name: str, r: Reader) -> BudgetCheck:
        return cls(name=name, drop_pp=r.num("drop_pp"), bound_pp=r.num("bound_pp"),
                   validation_size=r.int_("validation_size"), lost=r.int_("lost"), gained=r.int_("gained"),
                   within_budget=r.bool_("within_budget"))


@dataclass(frozen=True)
class Budget:
    """report.json's ``budget`` (written by :func:`edgekit.pipeline._judge`): the budget, its statistical margin,
    each file's check, what the budgeted stages decided, explicit values, exclusions and within-budget notes."""

    budget_pp: float | None = None
    confidence: float | None = None
    validation_size: int | None = None
    method: str = ""
    checks: tuple[BudgetCheck, ...] = ()
    decisions: tuple[tuple[str, str], ...] = ()  # (file, sentence): budgeted pruning and int8
    explicit: tuple[str, ...] = ()
    excluded: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    reference: tuple[str, ...] = ()  # what the budget is judged against: the model as brought, fine-tuning's fate

    @classmethod
    def from_dict(cls, data: Json, source: str = "report.json") -> Budget:
        r = Reader(data, "budget", source)
        margin = r.record("margin", lambda m: m) or Reader({}, "budget.margin", source)
        checks = r.mapping("checks") or {}
        decisions: list[tuple[str, str]] = []
        for name, kinds in (r.mapping("pruning") or {}).items():
            for kind, d in (kinds or {}).items():
                d = r.child(f"pruning.{name}.{kind}", d)
                decisions.append((name, f"{kind} pruning {d.str_('action') or '?'}, validation drop "
                                        f"{_pp(d.num('drop_pp'))}" + (f": {d.str_('reason')}" if d.str_("reason") else "")))
        for name, d in (r.mapping("int8") or {}).items():
            d = r.child(f"int8.{name}", d)
            decisions.append((name, f"int8 {d.str_('action') or '?'} ({d.str_('precision') or '?'}), validation drop "
                                    f"{_pp(d.num('drop_pp'))}" + (f": {d.str_('reason')}" if d.str_("reason") else "")))
        explicit = tuple(r.child(f"explicit[{i}]", e).str_("note") or "" for i, e in enumerate(r.list_("explicit")))
        excluded = r.mapping("excluded") or {}
        for k, v in excluded.items():
            if not isinstance(v, str):
                r.fail(f"excluded.{k}", f"expected a string, got {show(v)}")
        return cls(budget_pp=r.num("budget_pp"), confidence=margin.num("confidence"),
                   validation_size=margin.int_("validation_size"), method=margin.str_("method") or "",
                   checks=tuple(BudgetCheck.parse(str(k), r.child(f"checks.{k}", v)) for k, v in checks.items()),
                   decisions=tuple(decisions), explicit=tuple(e for e in explicit if e), excluded=dict(excluded),
                   notes=r.strs("notes"), reference=_reference_lines(r.record("reference", lambda x: x)))

    @classmethod
    def of(cls, data: Json | None) -> Budget | None:
        return None if data is None else cls.from_dict(data)

    def rule(self) -> str:
        """One sentence: the budget and how it is judged."""
        budget = f"{self.budget_pp:g} pp" if self.budget_pp is not None else "the budget"
        margin = (f", judged by the one-sided {self.confidence * 100:g} % upper confidence bound of the drop "
                  f"({self.method}; {self.validation_size} validation images)" if self.confidence is not None else "")
        against = "the reference model" if self.reference else "the trained model"
        return f"Budget: {budget} of validation accuracy against {against}{margin}."


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.2f} %"


def _reference_lines(r: Reader | None) -> tuple[str, ...]:
    """The budget's ``reference`` record in words: the model judged against, the model as brought, fine-tuning."""
    if r is None:
        return ()
    model = r.str_("model") or "trained"
    which = "the model as brought" if model == "as brought" else f"the {model} model"
    lines = [f"Reference: {which} (validation {_pct(r.num('val_accuracy'))}, test {_pct(r.num('accuracy'))})."]
    brought = r.record("as_brought", lambda x: x)
    if brought is not None:
        lines.append(f"As brought: validation {_pct(brought.num('val_accuracy'))}, "
                     f"test {_pct(brought.num('accuracy'))}.")
    fine = r.record("fine_tuning", lambda x: x)
    if fine is not None:
        after = fine.num("val_after")
        change = f" (validation {_pct(fine.num('val_before'))} → {_pct(after)})" if after is not None else ""
        lines.append(f"Fine-tuning {fine.str_('action') or '?'}{change}: {fine.str_('reason') or ''}")
    return tuple(lines)


def _pp(x: float | None) -> str:
    return "–" if x is None else f"{x:+.2f} pp"


def _budget_rows(b: Budget) -> list[tuple[str, str, str, str, str]]:
    return [(c.name, _pp(c.drop_pp), _pp(c.bound_pp),
             f"{c.lost} / {c.gained}" if c.lost is not None and c.gained is not None else "–",
             "yes" if c.within_budget else "no") for c in b.checks]


def _budget_lists(b: Budget) -> list[tuple[str, list[str]]]:
    """The section's lists, titled, non-empty only."""
    lists = [("Decisions", [f"{n}: {s}" for n, s in b.decisions]), ("Explicit values", list(b.explicit)),
             ("Not chosen", [f"{n}: {why}" for n, why in b.excluded.items()]),
             ("Within the budget (notes, not flags)", list(b.notes))]
    return [(title, items) for title, items in lists if items]


BUDGET_HEAD = ("file", "validation drop", "upper bound", "images lost / gained", "within budget")


def budget_markdown(data: Json | None) -> list[str]:
    """report.md's "Accuracy budget" section (nothing for a report without a ``budget``)."""
    b = Budget.of(data)
    if b is None:
        return []
    lines = ["## Accuracy budget", "", b.rule(), ""] + [x for line in b.reference for x in (line, "")]
    if b.checks:
        lines += ["| " + " | ".join(BUDGET_HEAD) + " |", "|" + "---|" * len(BUDGET_HEAD)]
        lines += ["| " + " | ".join(row) + " |" for row in _budget_rows(b)] + [""]
    for title, items in _budget_lists(b):
        lines += [f"{title}:", ""] + [f"- {x}" for x in items] + [""]
    return lines


def budget_html(data: Json | None) -> str:
    """report.html's "Accuracy budget" section (empty for a report without a ``budget``)."""
    b = Budget.of(data)
    if b is None:
        return ""
    e = html.escape
    out = f'<section id="budget"><h2>Accuracy budget</h2><p>{e(b.rule())}</p>' + "".join(
        f'<p class="reference">{e(line)}</p>' for line in b.reference)
    if b.checks:
        head = "".join(f"<th>{e(h)}</th>" for h in BUDGET_HEAD)
        body = "".join(f'<tr class="{"" if row[-1] == "yes" else "regressed"}">'
                       + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>" for row in _budget_rows(b))
        out += f'<table class="budget"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    for title, items in _budget_lists(b):
        out += f"<h3>{e(title)}</h3><ul>" + "".join(f"<li>{e(x)}</li>" for x in items) + "</ul>"
    return out + "</section>"
