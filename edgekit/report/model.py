"""The typed report: ``Report`` and its records, read from and written to ``report.json``.

``Report.from_dict`` checks every field it reads and raises :class:`~edgekit.errors.ReportError`
with one line naming the file and the field (``report.json: artifacts[2].bytes: expected a number,
got 'x'``). ``to_dict`` gives back the same keys (report.json is public): fields a report did not
carry stay absent, and keys a record does not know are kept in its ``extra``.

Renderers read these fields; they never look keys up in dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from edgekit.report._fields import Json, Reader, pct, show, written
from edgekit.report.mcu import McuFit, McuTarget
from edgekit.report.sections import Analysis, Executor, Tune

T = TypeVar("T")


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Latency:
    """Latency statistics of one benchmark cell, in milliseconds."""

    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None

    KEYS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")

    @classmethod
    def parse(cls, r: Reader) -> Latency:
        return cls(**{k: r.num(k) for k in cls.KEYS})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS if getattr(self, k) is not None}


@dataclass(frozen=True)
class BenchRow:
    """One benchmark cell: an artifact on a target at one batch size and thread count."""

    artifact_id: str
    target: str
    status: str  # ok | skipped | failed
    reason: str = ""
    runtime: str | None = None
    emulated: bool = False
    provider: str | None = None
    providers: tuple[str, ...] | None = None
    node_share: Mapping[str, float] | None = None
    batch_size: int | None = None
    threads: int | None = None
    latency_ms: Latency | None = None
    throughput_per_s: float | None = None
    runs: int | None = None
    seconds: float | None = None
    session_create_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    accuracy: float | None = None
    top1_agreement: float | None = None
    reference_target: str | None = None
    target_agreement: float | None = None
    mcu: McuFit | None = None  # a microcontroller row (location tflm): TFLM check and RAM/flash fit
    # "% of peak" (edgekit.bench.peak; absent in reports written before it): MACs × images/s ÷ the GEMM peak
    # measured where the row ran, on its thread count, of the kernel its precision runs on (fp32 | int8)
    macs_per_image: int | None = None
    peak_kernel: str | None = None
    peak_gmacs: float | None = None  # GMAC/s
    percent_of_peak: float | None = None
    peak_reason: str = ""  # why an ok row has no % of peak
    extra: Mapping[str, Any] = field(default_factory=dict)

    NUMBERS = ("throughput_per_s", "seconds", "session_create_ms", "first_inference_ms", "peak_rss_mb", "accuracy",
               "top1_agreement", "target_agreement")
    PEAK_KEYS = ("macs_per_image", "peak_kernel", "peak_gmacs", "percent_of_peak", "peak_reason")
    """Written only when set, so a report from before them reads and writes back unchanged."""
    KEYS = ("artifact_id", "runtime", "target", "emulated", "provider", "providers", "node_share", "status", "reason",
            "batch_size", "threads", "latency_ms", "throughput_per_s", "runs", "seconds", "session_create_ms",
            "first_inference_ms", "peak_rss_mb", "accuracy", "top1_agreement", "reference_target", "target_agreement")

    @classmethod
    def parse(cls, r: Reader) -> BenchRow:
        return cls(
            artifact_id=r.str_("artifact_id", required=True) or "", target=r.str_("target", required=True) or "",
            status=r.str_("status", required=True) or "", reason=r.str_("reason") or "", runtime=r.str_("runtime"),
            emulated=r.bool_("emulated"), provider=r.str_("provider"),
            providers=r.strs("providers") if r.data.get("providers") is not None else None,
            node_share=r.num_map("node_share"), batch_size=r.int_("batch_size"),
            threads=r.int_("threads"), latency_ms=r.record("latency_ms", Latency.parse), runs=r.int_("runs"),
            reference_target=r.str_("reference_target"), mcu=r.record("mcu", McuFit.parse),
            macs_per_image=r.int_("macs_per_image"), peak_kernel=r.str_("peak_kernel"), peak_gmacs=r.num("peak_gmacs"),
            percent_of_peak=r.num("percent_of_peak"), peak_reason=r.str_("peak_reason") or "",
            extra=r.extra((*cls.KEYS, "mcu", *cls.PEAK_KEYS)), **{k: r.num(k) for k in cls.NUMBERS})

    @classmethod
    def from_dict(cls, data: Json, source: str = "benchmark row") -> BenchRow:
        return cls.parse(Reader(data, "", source))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50(self) -> float | None:
        return self.latency_ms.p50 if self.latency_ms else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in self.KEYS:
            v = getattr(self, k)
            if k == "latency_ms":
                v = v.to_dict() if v is not None else None
            elif k == "providers":
                v = list(v) if v is not None else None
            elif k == "node_share":
                v = dict(v) if v is not None else None
            out[k] = v
        if self.mcu is not None:  # written only for a microcontroller row
            out["mcu"] = self.mcu.to_dict()
        out.update({k: getattr(self, k) for k in self.PEAK_KEYS if getattr(self, k) not in (None, "")})
        return {**out, **self.extra}


@dataclass(frozen=True)
class Verification:
    """How an artifact follows the model it was made from (``edgekit.export.verify.Parity``)."""

    parent_id: str
    status: str
    reason: str = ""
    samples: int | None = None
    max_abs_diff: float | None = None
    top1_agreement: float | None = None
    accuracy: float | None = None
    parent_accuracy: float | None = None
    accuracy_delta_pp: float | None = None

    NUMBERS = ("max_abs_diff", "top1_agreement", "accuracy", "parent_accuracy", "accuracy_delta_pp")

    @classmethod
    def parse(cls, r: Reader) -> Verification:
        return cls(parent_id=r.str_("parent_id", required=True) or "", status=r.str_("status", required=True) or "",
                   reason=r.str_("reason") or "", samples=r.int_("samples"), **{k: r.num(k) for k in cls.NUMBERS})

    def to_dict(self) -> dict[str, Any]:
        return {"parent_id": self.parent_id, "samples": self.samples, "max_abs_diff": self.max_abs_diff,
                "top1_agreement": self.top1_agreement, "accuracy": self.accuracy, "parent_accuracy": self.parent_accuracy,
                "accuracy_delta_pp": self.accuracy_delta_pp, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class AuditLayer:
    """One layer of a model file as ``edgekit.audit`` reads it."""

    name: str
    op: str | None = None
    weight_dtype: str | None = None
    params: int | None = None
    sparsity: float | None = None  # fraction of zero weights
    macs: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("name", "op", "weight_dtype", "params", "sparsity", "macs")

    @classmethod
    def parse(cls, r: Reader) -> AuditLayer:
        return cls(name=r.str_("name") or "?", op=r.str_("op"), weight_dtype=r.str_("weight_dtype"),
                   params=r.int_("params"), sparsity=r.num("sparsity"), macs=r.int_("macs"), extra=r.extra(cls.KEYS))

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.KEYS}, **self.extra}


@dataclass(frozen=True)
class Audit:
    """What the file itself says: per-layer weights, weight counts by dtype, overall sparsity."""

    layers: tuple[AuditLayer, ...] = ()
    by_dtype: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # dtype -> {"count", "share"}
    sparsity: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # inputs, outputs, ops, macs, params.total, ...

    @classmethod
    def parse(cls, r: Reader) -> Audit:
        by_dtype: dict[str, Mapping[str, Any]] = {}
        params = r.mapping("params")
        if params is not None:
            p = r.child("params", params)
            for dtype, entry in (p.mapping("by_dtype") or {}).items():
                p.child(f"by_dtype.{dtype}", entry).num("share")  # checked: a number where present
                by_dtype[str(dtype)] = entry
        extra = r.extra(("layers", "sparsity"))
        if params is not None:
            extra["params"] = {k: v for k, v in params.items() if k != "by_dtype"}
        return cls(layers=r.records("layers", AuditLayer.parse), by_dtype=by_dtype, sparsity=r.num("sparsity"),
                   extra=extra)

    @property
    def weight_share(self) -> dict[str, float]:
        """dtype -> share of the weights."""
        return {k: float(v["share"]) for k, v in self.by_dtype.items() if v.get("share") is not None}

    def to_dict(self) -> dict[str, Any]:
        out = {**self.extra, "sparsity": self.sparsity, "layers": [x.to_dict() for x in self.layers]}
        if "params" in self.extra or self.by_dtype:
            out["params"] = {**(self.extra.get("params") or {}), "by_dtype": {k: dict(v) for k, v in self.by_dtype.items()}}
        return out


@dataclass(frozen=True)
class ArtifactRecord:
    """One model file of the run: where it came from, its size and accuracy, its audit and verification."""

    id: str
    format: str
    precision: str
    name: str = ""
    stage: str = ""
    path: str | None = None
    bytes: int | None = None
    gzip_bytes: int | None = None
    sha256: str | None = None
    parent_id: str | None = None
    accuracy: float | None = None
    val_accuracy: float | None = None
    sparsity: float | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None
    audit: Audit | None = None
    verification: Verification | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("id", "name", "stage", "format", "precision", "path", "bytes", "gzip_bytes", "sha256", "parent_id",
            "accuracy", "val_accuracy", "sparsity", "config", "metrics", "meta", "audit", "verification")

    @classmethod
    def parse(cls, r: Reader) -> ArtifactRecord:
        for k in ("bytes", "gzip_bytes"):
            if (n := r.int_(k)) is not None and n < 0:
                r.fail(k, f"expected a size >= 0, got {n}")
        for k in ("accuracy", "val_accuracy", "sparsity"):
            if (x := r.num(k)) is not None and not (0.0 <= x <= 1.0):
                r.fail(k, f"expected a fraction in [0, 1], got {x}")
        return cls(
            id=r.str_("id", required=True) or "", format=r.str_("format", required=True) or "",
            precision=r.str_("precision") or "", name=r.str_("name") or "", stage=r.str_("stage") or "",
            path=r.str_("path"), bytes=r.int_("bytes"), gzip_bytes=r.int_("gzip_bytes"), sha256=r.str_("sha256"),
            parent_id=r.str_("parent_id"), accuracy=r.num("accuracy"), val_accuracy=r.num("val_accuracy"),
            sparsity=r.num("sparsity"), config=r.mapping("config") or {}, metrics=r.mapping("metrics") or {},
            meta=r.mapping("meta"), audit=r.record("audit", Audit.parse),
            verification=r.record("verification", Verification.parse), extra=r.extra(cls.KEYS))

    @classmethod
    def from_dict(cls, data: Json, source: str = "artifact") -> ArtifactRecord:
        return cls.parse(Reader(data, "", source))

    @property
    def label(self) -> str:
        """``name.format``: readable and unique enough in a run (falls back to the stage or the id)."""
        return f"{self.name or self.stage or self.id}.{self.format}"

    @property
    def accuracy_pct(self) -> float | None:
        return pct(self.accuracy)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.KEYS}
        out.update(config=dict(self.config), metrics=dict(self.metrics),
                   meta=dict(self.meta) if self.meta is not None else None,
                   audit=self.audit.to_dict() if self.audit else None,
                   verification=self.verification.to_dict() if self.verification else None)
        return {**out, **self.extra}


@dataclass(frozen=True)
class TargetInfo:
    """A device profile the run measured on."""

    name: str
    location: str | None = None
    arch: str | None = None
    emulated: bool = False
    providers: tuple[str, ...] = ()
    source: str | None = None

    @classmethod
    def parse(cls, r: Reader) -> TargetInfo:
        return cls(name=r.str_("name", required=True) or "", location=r.str_("location"), arch=r.str_("arch"),
                   emulated=r.bool_("emulated"), providers=r.strs("providers"), source=r.str_("source"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "location": self.location, "arch": self.arch, "emulated": self.emulated,
                "providers": list(self.providers), "source": self.source}


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset summary (``Dataset.summary()``)."""

    name: str = ""
    source: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    input_shape: tuple[int, ...] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, r: Reader) -> DatasetInfo:
        shape = r.ints("input_shape")
        return cls(name=r.str_("name") or "", source=r.str_("source"), train_size=r.int_("train_size"),
                   val_size=r.int_("val_size"), test_size=r.int_("test_size"),
                   input_shape=shape or None, raw=dict(r.data))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class Environment:
    """Versions and the CPU the report was made on (``edgekit.report.build.environment``)."""

    values: Mapping[str, Any] = field(default_factory=dict)  # as written: edgekit, tensorflow, ..., cpu_flags

    SHOWN_FIRST = ("edgekit", "tensorflow", "onnxruntime", "litert", "python", "platform", "machine", "cpu_model",
                   "cpu_count")

    @classmethod
    def parse(cls, r: Reader) -> Environment:
        r.strs("cpu_flags")  # checked: a list of strings when present
        return cls(values=dict(r.data))

    @property
    def cpu_flags(self) -> tuple[str, ...]:
        return tuple(self.values.get("cpu_flags") or ())

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class SearchCandidate:
    """One deployable artifact the accuracy-budget search measured (validation accuracy only)."""

    id: str
    name: str
    format: str
    precision: str
    bytes: int
    val_accuracy: float
    val_drop_pp: float
    latency_ms: float | None = None
    on_front: bool = False
    within_budget: bool = False
    excluded: str = ""  # why the search may not choose it ("" = eligible)
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("id", "name", "format", "precision", "bytes", "val_accuracy", "val_drop_pp", "latency_ms", "on_front",
            "within_budget", "excluded")

    @classmethod
    def parse(cls, r: Reader) -> SearchCandidate:
        def need(x: T | None, key: str) -> T:
            if x is None:
                r.fail(key, "missing")
            assert x is not None
            return x

        return cls(id=r.str_("id", required=True) or "", name=r.str_("name") or "", format=r.str_("format") or "",
                   precision=r.str_("precision") or "", bytes=need(r.int_("bytes"), "bytes"),
                   val_accuracy=need(r.num("val_accuracy"), "val_accuracy"),
                   val_drop_pp=need(r.num("val_drop_pp"), "val_drop_pp"), latency_ms=r.num("latency_ms"),
                   on_front=r.bool_("on_front"), within_budget=r.bool_("within_budget"),
                   excluded=r.str_("excluded") or "", extra=r.extra(cls.KEYS))

    @property
    def label(self) -> str:
        return f"{self.name or self.id}.{self.format}"

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.KEYS}
        if not self.excluded:  # written only for an excluded candidate
            del out["excluded"]
        return {**out, **self.extra}


@dataclass(frozen=True)
class SearchResult:
    """The accuracy-budget search (``edgekit.search.choose``)."""

    status: str
    chosen_id: str | None = None
    target: str = ""
    budget_pp: float | None = None
    latency_target_ms: float | None = None
    candidates: tuple[SearchCandidate, ...] = ()
    front: tuple[str, ...] = ()
    reason: str = ""
    summary: str = ""
    fallback: bool | None = None  # True: nothing compressed was eligible, the fp32 baseline is handed out
    excluded: Mapping[str, str] = field(default_factory=dict)  # candidate id -> why it may not be chosen
    extra: Mapping[str, Any] = field(default_factory=dict)
    present: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The keys the dict had: ``to_dict`` writes those back."""

    KEYS = ("status", "chosen_id", "target", "budget_pp", "latency_target_ms", "candidates", "front", "reason", "summary",
            "fallback", "excluded")

    @classmethod
    def parse(cls, r: Reader) -> SearchResult:
        excluded = r.mapping("excluded") or {}
        for k, v in excluded.items():
            if not isinstance(v, str):
                r.fail(f"excluded.{k}", f"expected a string, got {show(v)}")
        fallback = r.bool_("fallback") if r.data.get("fallback") is not None else None
        return cls(status=r.str_("status") or "ok", chosen_id=r.str_("chosen_id"), target=r.str_("target") or "",
                   budget_pp=r.num("budget_pp"), latency_target_ms=r.num("latency_target_ms"),
                   candidates=r.records("candidates", SearchCandidate.parse), front=r.strs("front"),
                   reason=r.str_("reason") or "", summary=r.str_("summary") or "", fallback=fallback,
                   excluded={str(k): v for k, v in excluded.items()}, extra=r.extra(cls.KEYS),
                   present=frozenset(k for k in cls.KEYS if r.has(k)))

    def to_dict(self) -> dict[str, Any]:
        values = {k: getattr(self, k) for k in self.KEYS}
        values.update(candidates=[c.to_dict() for c in self.candidates], front=list(self.front),
                      excluded=dict(self.excluded) if self.excluded or "excluded" in self.present else None)
        return {**written(values, self.present), **self.extra}


@dataclass(frozen=True)
class Regression:
    """An artifact that is larger, slower or less accurate than the model it should improve on.

    ``reference_id`` is what it is compared with: its parent, or for a file made from a Keras model
    the fp32 file of the same format (an int8 .tflite against the fp32 .tflite of the same Keras model).
    ``target`` is None for a size, or for an accuracy measured off-target.
    """

    artifact_id: str
    reference_id: str
    kind: str  # larger | slower | less_accurate
    value: float
    reference_value: float
    unit: str  # KB | ms | %
    message: str
    target: str | None = None
    batch_size: int | None = None
    threads: int | None = None

    KINDS = ("larger", "slower", "less_accurate")

    @classmethod
    def parse(cls, r: Reader) -> Regression:
        kind = r.str_("kind", required=True) or ""
        if kind not in cls.KINDS:
            r.fail("kind", f"expected one of {', '.join(cls.KINDS)}, got {show(kind)}")
        value, ref = r.num("value"), r.num("reference_value")
        if value is None or ref is None:
            r.fail("value" if value is None else "reference_value", "missing")
        assert value is not None and ref is not None
        return cls(artifact_id=r.str_("artifact_id", required=True) or "",
                   reference_id=r.str_("reference_id", required=True) or "", kind=kind, value=value,
                   reference_value=ref, unit=r.str_("unit") or "", message=r.str_("message", required=True) or "",
                   target=r.str_("target"), batch_size=r.int_("batch_size"), threads=r.int_("threads"))

    def to_dict(self) -> dict[str, Any]:
        return {"artifact_id": self.artifact_id, "reference_id": self.reference_id, "kind": self.kind,
                "target": self.target, "batch_size": self.batch_size, "threads": self.threads, "value": self.value,
                "reference_value": self.reference_value, "unit": self.unit, "message": self.message}


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class Report:
    """A run's report.json, typed. ``status`` is ok | failed; ``warnings`` say what a reader must not miss."""

    artifacts: tuple[ArtifactRecord, ...] = ()
    benchmarks: tuple[BenchRow, ...] = ()
    targets: tuple[TargetInfo, ...] = ()
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    environment: Environment = field(default_factory=Environment)
    status: str = "ok"
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    regressions: tuple[Regression, ...] = ()
    baseline_id: str | None = None
    chosen_id: str | None = None
    search: SearchResult | None = None
    analysis: Analysis | None = None
    tune: Tune | None = None
    executor: Executor | None = None  # where the run's parallel work ran (None: a report.json without the section)
    mcu: tuple[McuTarget, ...] = ()  # one per microcontroller target of the run
    report_version: int | None = None
    edgekit_version: str | None = None
    created: str | None = None
    command: str | None = None
    seconds: float | None = None
    seed: int | None = None
    config: Mapping[str, Any] | None = None
    out: str | None = None
    present: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The top-level keys the dict had: ``to_dict`` writes those back."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("report_version", "edgekit_version", "created", "command", "seconds", "dataset", "seed", "config",
            "environment", "targets", "baseline_id", "chosen_id", "artifacts", "benchmarks", "status", "problems",
            "warnings", "regressions", "search", "analysis", "tune", "executor", "mcu", "out")

    @classmethod
    def from_dict(cls, data: Any, source: str = "report.json") -> Report:
        """Check and type a parsed report.json; a bad field raises ReportError naming ``source`` and the field."""
        r = Reader(data, "", source)
        status = r.str_("status") or "ok"
        if status not in ("ok", "failed", "over_budget"):
            r.fail("status", f"expected ok or failed (or over_budget), got {show(status)}")
        report = cls(
            artifacts=r.records("artifacts", ArtifactRecord.parse), benchmarks=r.records("benchmarks", BenchRow.parse),
            targets=r.records("targets", TargetInfo.parse), dataset=r.record("dataset", DatasetInfo.parse) or DatasetInfo(),
            environment=r.record("environment", Environment.parse) or Environment(), status=status,
            problems=r.strs("problems"), warnings=r.strs("warnings"),
            regressions=r.records("regressions", Regression.parse), baseline_id=r.str_("baseline_id"),
            chosen_id=r.str_("chosen_id"), search=r.record("search", SearchResult.parse),
            analysis=r.record("analysis", Analysis.parse), tune=r.record("tune", Tune.parse),
            executor=r.record("executor", Executor.parse),
            mcu=r.records("mcu", McuTarget.parse),
            report_version=r.int_("report_version"), edgekit_version=r.str_("edgekit_version"),
            created=r.str_("created"), command=r.str_("command"), seconds=r.num("seconds"), seed=r.int_("seed"),
            config=r.mapping("config"), out=r.str_("out"), present=frozenset(k for k in cls.KEYS if r.has(k)),
            extra=r.extra(cls.KEYS))
        ids = {a.id for a in report.artifacts}
        for i, b in enumerate(report.benchmarks):
            if b.artifact_id not in ids:
                r.fail(f"benchmarks[{i}].artifact_id", f"no artifact has id {show(b.artifact_id)}")
        for k in ("baseline_id", "chosen_id"):
            if getattr(report, k) is not None and getattr(report, k) not in ids:
                r.fail(k, f"no artifact has id {show(getattr(report, k))}")
        return report

    @classmethod
    def coerce(cls, report: Report | Json) -> Report:
        """``report`` itself, or the typed form of a report dict (as :func:`edgekit.report.build.build_report` makes)."""
        return report if isinstance(report, Report) else cls.from_dict(report, "report")

    def to_dict(self) -> dict[str, Any]:
        """The report.json object: the same keys as the dict it was read from (new reports: every section present)."""
        values: dict[str, Any] = {
            "report_version": self.report_version, "edgekit_version": self.edgekit_version, "created": self.created,
            "command": self.command, "seconds": self.seconds, "dataset": self.dataset.to_dict(), "seed": self.seed,
            "config": dict(self.config) if self.config is not None else None,
            "environment": self.environment.to_dict(), "targets": [t.to_dict() for t in self.targets],
            "baseline_id": self.baseline_id, "chosen_id": self.chosen_id,
            "artifacts": [a.to_dict() for a in self.artifacts], "benchmarks": [b.to_dict() for b in self.benchmarks],
            "status": self.status, "problems": list(self.problems), "warnings": list(self.warnings),
            "regressions": [g.to_dict() for g in self.regressions],
            "search": self.search.to_dict() if self.search else None,
            "analysis": self.analysis.to_dict() if self.analysis else None,
            "tune": self.tune.to_dict() if self.tune else None,
            "executor": self.executor.to_dict() if self.executor else None, "mcu": [m.to_dict() for m in self.mcu] if self.mcu or "mcu" in self.present else None,
            "out": self.out,
        }
        return {**written(values, self.present), **self.extra}

    # ----------------------------------------------------------------- look-ups renderers share
    def artifact(self, artifact_id: str | None) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.id == artifact_id), None) if artifact_id else None

    @property
    def baseline(self) -> ArtifactRecord | None:
        return self.artifact(self.baseline_id)

    @property
    def chosen(self) -> ArtifactRecord | None:
        return self.artifact(self.chosen_id)

    def rows_for(self, artifact_id: str, target: str | None = None) -> list[BenchRow]:
        return [b for b in self.benchmarks if b.artifact_id == artifact_id and (target is None or b.target == target)]

    def target_names(self) -> list[str]:
        """The run's targets in order (from the benchmark rows when the report lists none)."""
        names = [t.name for t in self.targets]
        return names or list(dict.fromkeys(b.target for b in self.benchmarks))

    @property
    def regressions_checked(self) -> bool:
        """False for a report.json written before edgekit looked for regressions (it has no ``regressions`` key)."""
        return not self.present or "regressions" in self.present

    def regressions_of(self, artifact_id: str) -> list[Regression]:
        return [g for g in self.regressions if g.artifact_id == artifact_id]
