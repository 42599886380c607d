"""The typed report: ``Report`` and its records, read from and written to ``report.json``.

Each record declares its keys once, as dataclass fields (:mod:`edgekit.report._fields`): reading
checks every field and raises :class:`~edgekit.errors.ReportError` with one line naming the file and
the field (``report.json: artifacts[2].bytes: expected an integer, got 'x'``); ``to_dict`` gives back
the same keys (report.json is public): fields a report did not carry stay absent, and keys a record
does not know are kept in its ``extra``.

Renderers read these fields; they never look keys up in dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgekit.report._fields import Json, Record, fail, key, path, pct, present, read, rest, show, whole
from edgekit.report.mcu import McuFit, McuTarget
from edgekit.report.sections import Analysis, Executor, Tune
from edgekit.rules.baseline import SpeedCheck, recorded_speed_checks
from edgekit.schema import from_mapping


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Latency(Record):
    """Latency statistics of one benchmark cell, in milliseconds."""

    p50: float | None = key(None, write="set")
    p90: float | None = key(None, write="set")
    p95: float | None = key(None, write="set")
    p99: float | None = key(None, write="set")
    mean: float | None = key(None, write="set")
    std: float | None = key(None, write="set")
    min: float | None = key(None, write="set")
    max: float | None = key(None, write="set")
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True, kw_only=True)
class BenchRow(Record):
    """One benchmark cell: an artifact on a target at one batch size and thread count.

    Every row carries the ``row`` group (:data:`edgekit.bench.api.ROW_FIELDS`); a microcontroller row
    (location ``tflm``) also has ``mcu``; an ok row the ``peak`` group (:mod:`edgekit.bench.peak`).
    """

    artifact_id: str = key(group="row")
    runtime: str | None = key(None, group="row")
    target: str = key(group="row")
    emulated: bool = key(False, group="row")
    provider: str | None = key(None, group="row")
    providers: tuple[str, ...] | None = key(None, group="row")
    node_share: Mapping[str, float] | None = key(None, group="row")
    status: str = key(group="row")  # ok | skipped | failed
    reason: str = key("", group="row")
    batch_size: int | None = key(None, group="row")
    threads: int | None = key(None, group="row")
    latency_ms: Latency | None = key(None, group="row", measured=True)
    throughput_per_s: float | None = key(None, group="row", measured=True)
    runs: int | None = key(None, group="row", measured=True)
    seconds: float | None = key(None, group="row", measured=True)
    session_create_ms: float | None = key(None, group="row", measured=True)
    first_inference_ms: float | None = key(None, group="row", measured=True)
    peak_rss_mb: float | None = key(None, group="row")
    accuracy: float | None = key(None, group="row", measured=True)
    top1_agreement: float | None = key(None, group="row", measured=True)
    reference_target: str | None = key(None, group="row")
    target_agreement: float | None = key(None, group="row", measured=True)
    started: str | None = key(None, write="set", group="row")  # when the cell was timed (ISO 8601)
    finished: str | None = key(None, write="set", group="row")
    mcu: McuFit | None = key(None, write="set")  # a microcontroller row (location tflm): TFLM check, RAM/flash fit
    # "% of peak" (absent in reports written before it): MACs × images/s ÷ the GEMM peak measured where the row
    # ran, on its thread count, of the kernel its precision runs on (fp32 | int8)
    macs_per_image: int | None = key(None, write="set", group="peak")
    peak_kernel: str | None = key(None, write="set", group="peak")
    peak_gmacs: float | None = key(None, write="set", group="peak")  # GMAC/s
    percent_of_peak: float | None = key(None, write="set", group="peak")
    peak_reason: str = key("", write="set", group="peak")  # why an ok row has no % of peak
    extra: Mapping[str, Any] = rest()

    @classmethod
    def from_dict(cls, data: Any, source: str = "benchmark row") -> BenchRow:
        return read(cls, data, source)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50(self) -> float | None:
        return self.latency_ms.p50 if self.latency_ms else None


@dataclass(frozen=True)
class Verification(Record):
    """How an artifact follows the model it was made from (``edgekit.rules.parity.Parity``)."""

    parent_id: str = key()
    status: str = key()
    reason: str = key("")
    samples: int | None = key(None)
    max_abs_diff: float | None = key(None)
    top1_agreement: float | None = key(None)
    accuracy: float | None = key(None)
    parent_accuracy: float | None = key(None)
    accuracy_delta_pp: float | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class AuditLayer(Record):
    """One layer of a model file as ``edgekit.audit`` reads it."""

    name: str = key("?")
    op: str | None = key(None)
    weight_dtype: str | None = key(None)
    params: int | None = key(None)
    sparsity: float | None = key(None)  # fraction of zero weights
    macs: int | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class Audit(Record):
    """What the file itself says: per-layer weights, weight counts by dtype, overall sparsity.

    report.json keeps the counts by dtype under ``params.by_dtype``; the rest of ``params`` (and every
    other key: inputs, outputs, ops, macs, ...) stays in ``extra``.
    """

    layers: tuple[AuditLayer, ...] = key(())
    by_dtype: Mapping[str, Mapping[str, Any]] = key(default_factory=dict)  # dtype -> {"count", "share"}
    sparsity: float | None = key(None)
    extra: Mapping[str, Any] = rest()

    @staticmethod
    def read(value: Any, where: str) -> Audit:
        """An ``audit`` object: ``params.by_dtype`` becomes ``by_dtype`` (each ``share`` a number)."""
        if not isinstance(value, Mapping):
            fail(where, "", f"expected an object, got {show(value)}")
        data = dict(value)
        params = data.get("params")
        if params is not None:
            if not isinstance(params, Mapping):
                fail(where, "params", f"expected an object, got {show(params)}")
            data["params"] = {k: v for k, v in params.items() if k != "by_dtype"}
            data["by_dtype"] = params.get("by_dtype") or {}
            for dtype, entry in data["by_dtype"].items():
                from_mapping(_Share, entry, path(where, f"params.by_dtype.{dtype}"))
        return from_mapping(Audit, data, where)

    @classmethod
    def from_dict(cls, data: Any, source: str = "audit") -> Audit:
        return read(cls, data, source, reader=cls.read)

    @property
    def weight_share(self) -> dict[str, float]:
        """dtype -> share of the weights."""
        return {k: float(v["share"]) for k, v in self.by_dtype.items() if v.get("share") is not None}

    def to_dict(self) -> dict[str, Any]:
        out = {**self.extra, "sparsity": self.sparsity, "layers": [x.to_dict() for x in self.layers]}
        if "params" in self.extra or self.by_dtype:
            out["params"] = {**(self.extra.get("params") or {}),
                             "by_dtype": {k: dict(v) for k, v in self.by_dtype.items()}}
        return out


@dataclass(frozen=True)
class _Share(Record):
    """One dtype's entry of ``params.by_dtype``: checked for a numeric share, kept as written."""

    share: float | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True, kw_only=True)
class ArtifactRecord(Record):
    """One model file of the run: where it came from, its size and accuracy, its audit and verification."""

    id: str = key()
    name: str = key("")
    stage: str = key("")
    format: str = key()
    precision: str = key("")
    path: str | None = key(None)
    bytes: int | None = key(None, size=True)
    gzip_bytes: int | None = key(None, size=True)
    sha256: str | None = key(None)
    parent_id: str | None = key(None)
    accuracy: float | None = key(None, fraction=True)
    val_accuracy: float | None = key(None, fraction=True)
    sparsity: float | None = key(None, fraction=True)
    config: Mapping[str, Any] = key(default_factory=dict)
    metrics: Mapping[str, Any] = key(default_factory=dict)
    meta: Mapping[str, Any] | None = key(None)
    audit: Audit | None = key(None, read=Audit.read)
    verification: Verification | None = key(None)
    extra: Mapping[str, Any] = rest()

    @classmethod
    def from_dict(cls, data: Any, source: str = "artifact") -> ArtifactRecord:
        return read(cls, data, source)

    @property
    def label(self) -> str:
        """``name.format``: readable and unique enough in a run (falls back to the stage or the id)."""
        return f"{self.name or self.stage or self.id}.{self.format}"

    @property
    def speed_checks(self) -> tuple[SpeedCheck, ...]:
        """Its batch-1 timings again in turns with the files it was checked against (from ``metrics``)."""
        return recorded_speed_checks(self.id, self.metrics)

    @property
    def accuracy_pct(self) -> float | None:
        return pct(self.accuracy)


@dataclass(frozen=True)
class TargetInfo(Record):
    """A device profile the run measured on."""

    name: str = key()
    location: str | None = key(None)
    arch: str | None = key(None)
    emulated: bool = key(False)
    providers: tuple[str, ...] = key(())
    source: str | None = key(None)
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class DatasetInfo(Record):
    """The dataset summary (``Dataset.summary()``), written back as it was read (``raw``)."""

    name: str = ""
    source: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    input_shape: tuple[int, ...] | None = None
    raw: Mapping[str, Any] = whole()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class Environment(Record):
    """Versions and the CPU the report was made on (``edgekit.report.build.environment``)."""

    values: Mapping[str, Any] = whole()  # as written: edgekit, tensorflow, ..., cpu_flags

    SHOWN_FIRST = ("edgekit", "tensorflow", "onnxruntime", "litert", "python", "platform", "machine", "cpu_model",
                   "cpu_count")

    def validate(self, where: str) -> None:
        from_mapping(_CpuFlags, {"cpu_flags": self.values.get("cpu_flags")}, where)

    @property
    def cpu_flags(self) -> tuple[str, ...]:
        return tuple(self.values.get("cpu_flags") or ())

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class _CpuFlags(Record):
    """``environment.cpu_flags``: checked for a list of strings (the environment is kept as written)."""

    cpu_flags: tuple[str, ...] = key(())


@dataclass(frozen=True)
class SearchCandidate(Record):
    """One deployable artifact the accuracy-budget search measured (validation accuracy only)."""

    id: str = key()
    name: str = key(absent="")
    format: str = key(absent="")
    precision: str = key(absent="")
    bytes: int = key()
    val_accuracy: float = key()
    val_drop_pp: float = key()
    latency_ms: float | None = key(None)
    on_front: bool = key(False)
    within_budget: bool = key(False)
    excluded: str = key("", write="set")  # why the search may not choose it ("" = eligible)
    extra: Mapping[str, Any] = rest()

    @property
    def label(self) -> str:
        return f"{self.name or self.id}.{self.format}"


@dataclass(frozen=True)
class SearchResult(Record):
    """The accuracy-budget search (``edgekit.search.choose``)."""

    status: str = key("ok")
    chosen_id: str | None = key(None)
    target: str = key("")
    budget_pp: float | None = key(None)
    latency_target_ms: float | None = key(None)
    candidates: tuple[SearchCandidate, ...] = key(())
    front: tuple[str, ...] = key(())
    reason: str = key("")
    summary: str = key("")
    fallback: bool | None = key(None)  # True: nothing compressed was eligible, the fp32 baseline is handed out
    excluded: Mapping[str, str] = key(default_factory=dict, write="set")  # candidate id -> why it may not be chosen
    extra: Mapping[str, Any] = rest()
    present: frozenset[str] = present()


@dataclass(frozen=True)
class Regression(Record):
    """An artifact that is larger, slower or less accurate than the model it should improve on.

    ``reference_id`` is what it is compared with: its parent, or for a file made from a Keras model
    the fp32 file of the same format (an int8 .tflite against the fp32 .tflite of the same Keras model).
    ``target`` is None for a size, or for an accuracy measured off-target.
    """

    artifact_id: str = key()
    reference_id: str = key()
    kind: str = key(choices=("larger", "slower", "less_accurate"))
    value: float = key()
    reference_value: float = key()
    unit: str = key(absent="")  # KB | ms | %
    message: str = key()
    target: str | None = key(None)
    batch_size: int | None = key(None)
    threads: int | None = key(None)
    extra: Mapping[str, Any] = rest()


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True, kw_only=True)
class Report(Record):
    """A run's report.json, typed. ``status`` is ok | failed; ``warnings`` say what a reader must not miss."""

    report_version: int | None = key(None)
    edgekit_version: str | None = key(None)
    created: str | None = key(None)
    command: str | None = key(None)
    seconds: float | None = key(None)
    dataset: DatasetInfo = key(default_factory=DatasetInfo)
    seed: int | None = key(None)
    config: Mapping[str, Any] | None = key(None)
    environment: Environment = key(default_factory=Environment)
    targets: tuple[TargetInfo, ...] = key(())
    baseline_id: str | None = key(None)
    chosen_id: str | None = key(None)
    artifacts: tuple[ArtifactRecord, ...] = key(())
    benchmarks: tuple[BenchRow, ...] = key(())
    status: str = key("ok")
    problems: tuple[str, ...] = key(())
    warnings: tuple[str, ...] = key(())
    regressions: tuple[Regression, ...] = key(())
    search: SearchResult | None = key(None)
    analysis: Analysis | None = key(None)
    tune: Tune | None = key(None)
    executor: Executor | None = key(None)  # where the run's parallel work ran
    mcu: tuple[McuTarget, ...] = key((), write="set")  # one per microcontroller target of the run
    out: str | None = key(None)
    extra: Mapping[str, Any] = rest()
    present: frozenset[str] = present()
    """The top-level keys the dict had: ``to_dict`` writes those back (new reports: every section present)."""

    STATUSES = ("ok", "failed", "over_budget")

    @classmethod
    def from_dict(cls, data: Any, source: str = "report.json") -> Report:
        """Check and type a parsed report.json; a bad field raises ReportError naming ``source`` and the field."""
        return read(cls, data, source)

    def validate(self, where: str) -> None:
        if self.status not in self.STATUSES:
            fail(where, "status", f"expected ok or failed (or over_budget), got {show(self.status)}")
        ids = {a.id for a in self.artifacts}
        for i, b in enumerate(self.benchmarks):
            if b.artifact_id not in ids:
                fail(where, f"benchmarks[{i}].artifact_id", f"no artifact has id {show(b.artifact_id)}")
        for k in ("baseline_id", "chosen_id"):
            if getattr(self, k) is not None and getattr(self, k) not in ids:
                fail(where, k, f"no artifact has id {show(getattr(self, k))}")

    @classmethod
    def coerce(cls, report: Report | Json) -> Report:
        """``report`` itself, or the typed form of a report dict (as :func:`edgekit.report.build.build_report`
        makes)."""
        return report if isinstance(report, Report) else cls.from_dict(report, "report")

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
