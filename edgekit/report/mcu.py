"""Microcontroller records of the report: a benchmark row's ``mcu`` fit and the per-target ``mcu`` section.

* :class:`McuFit` is a row's ``mcu`` object (location ``tflm``): TFLM's verdict on the file, its
  agreement with LiteRT, the measured arena, and RAM/flash needs against the profile with margins.
* :class:`McuTarget` is one entry of report.json's ``mcu`` list: the profile's budgets and the
  Cortex-M cross-compile of the chosen artifact (``arm-none-eabi-size`` output) or why it was skipped.

The fit table per artifact is read from the benchmark rows (:func:`fit_rows`); renderers draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from edgekit.report._fields import Reader


@dataclass(frozen=True)
class McuFit:
    """Whether one file fits a microcontroller profile, as measured on TFLM's kernels (a row's ``mcu``)."""

    fits: bool | None = None  # None: not decided (TFLM not installed)
    reason: str = ""
    target: str | None = None
    runtime: str | None = None
    fits_ram: bool | None = None
    fits_flash: bool | None = None
    arena_bytes: int | None = None
    model_bytes: int | None = None
    runtime_ram_bytes: int | None = None
    runtime_flash_bytes: int | None = None
    ram_bytes: int | None = None
    flash_bytes: int | None = None
    ram_needed_bytes: int | None = None
    flash_needed_bytes: int | None = None
    ram_margin_bytes: int | None = None
    flash_margin_bytes: int | None = None
    unsupported_ops: tuple[str, ...] = ()
    tflm_status: str | None = None  # ok | unsupported | failed | skipped
    tflm_agreement: float | None = None  # top-1 agreement with LiteRT on the same file
    tflm_images: int | None = None
    tflm_version: str | None = None
    latency: str | None = None  # why there is no latency figure
    extra: Mapping[str, Any] = field(default_factory=dict)

    INTS = ("arena_bytes", "model_bytes", "runtime_ram_bytes", "runtime_flash_bytes", "ram_bytes", "flash_bytes",
            "ram_needed_bytes", "flash_needed_bytes", "ram_margin_bytes", "flash_margin_bytes", "tflm_images")
    KEYS = ("fits", "reason", "target", "runtime", "fits_ram", "fits_flash", *INTS, "unsupported_ops", "tflm_status",
            "tflm_agreement", "tflm_version", "latency")

    @classmethod
    def parse(cls, r: Reader) -> McuFit:
        def tri(key: str) -> bool | None:
            return r.bool_(key) if r.data.get(key) is not None else None

        return cls(fits=tri("fits"), reason=r.str_("reason") or "", target=r.str_("target"), runtime=r.str_("runtime"),
                   fits_ram=tri("fits_ram"), fits_flash=tri("fits_flash"), unsupported_ops=r.strs("unsupported_ops"),
                   tflm_status=r.str_("tflm_status"), tflm_agreement=r.num("tflm_agreement"),
                   tflm_version=r.str_("tflm_version"), latency=r.str_("latency"), extra=r.extra(cls.KEYS),
                   **{k: r.int_(k) for k in cls.INTS})

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.KEYS}
        out["unsupported_ops"] = list(self.unsupported_ops)
        return {**out, **self.extra}


@dataclass(frozen=True)
class CrossCompile:
    """The examples/mcu firmware built around the chosen model for a Cortex-M (``arm-none-eabi-size``)."""

    status: str  # ok | skipped | failed
    reason: str = ""
    cpu: str | None = None
    artifact_id: str | None = None
    toolchain: str | None = None
    model: Mapping[str, int] | None = None  # the model's C array object: text/data/bss/flash/ram bytes
    firmware: Mapping[str, int] | None = None  # the whole image
    arena_bytes: int | None = None  # MODEL_ARENA_BYTES in the generated header
    size_output: str = ""

    @classmethod
    def parse(cls, r: Reader) -> CrossCompile:
        return cls(status=r.str_("status", required=True) or "", reason=r.str_("reason") or "", cpu=r.str_("cpu"),
                   artifact_id=r.str_("artifact_id"), toolchain=r.str_("toolchain"), model=r.mapping("model"),
                   firmware=r.mapping("firmware"), arena_bytes=r.int_("arena_bytes"),
                   size_output=r.str_("size_output") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "cpu": self.cpu, "artifact_id": self.artifact_id,
                "toolchain": self.toolchain, "model": dict(self.model) if self.model is not None else None,
                "firmware": dict(self.firmware) if self.firmware is not None else None,
                "arena_bytes": self.arena_bytes, "size_output": self.size_output}


@dataclass(frozen=True)
class McuTarget:
    """One microcontroller profile of the run: its budgets, and the chosen artifact's cross-compiled size."""

    target: str
    runtime: str = "tflite-micro"
    cpu: str = ""
    ram_kb: int | None = None
    flash_kb: int | None = None
    runtime_ram_kb: int | None = None
    runtime_flash_kb: int | None = None
    cross_compile: CrossCompile | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("target", "runtime", "cpu", "ram_kb", "flash_kb", "runtime_ram_kb", "runtime_flash_kb", "cross_compile")

    @classmethod
    def parse(cls, r: Reader) -> McuTarget:
        return cls(target=r.str_("target", required=True) or "", runtime=r.str_("runtime") or "tflite-micro",
                   cpu=r.str_("cpu") or "", ram_kb=r.int_("ram_kb"), flash_kb=r.int_("flash_kb"),
                   runtime_ram_kb=r.int_("runtime_ram_kb"), runtime_flash_kb=r.int_("runtime_flash_kb"),
                   cross_compile=r.record("cross_compile", CrossCompile.parse), extra=r.extra(cls.KEYS))

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.KEYS}
        out["cross_compile"] = self.cross_compile.to_dict() if self.cross_compile else None
        return {**out, **self.extra}


def fit_rows(report: Any, target: str) -> list[Any]:
    """The benchmark rows (``BenchRow``) of ``target`` in ``report`` (a ``Report``; typed loosely, this module sits
    below :mod:`edgekit.report.model`) that carry a fit, one per .tflite artifact, in artifact order."""
    order = {a.id: i for i, a in enumerate(report.artifacts)}
    rows = [b for b in report.benchmarks if b.target == target and b.mcu is not None]
    return sorted(rows, key=lambda b: order.get(b.artifact_id, len(order)))


def _kb(n: int | None, sign: bool = False) -> str:
    return "–" if n is None else (f"{n / 1024:+.1f}" if sign else f"{n / 1024:.1f}")


def _yes(v: bool | None) -> str:
    return "–" if v is None else ("yes" if v else "**no**")


NOTE = ("Arena: the tensor arena TFLM used on this host (its 64-bit build: a safe upper bound for a 32-bit core); "
        "runtime RAM/flash: the profile's estimates for the interpreter and kernels. Agreement: top-1 agreement of "
        "TFLM with LiteRT on the same file and test images. No latency: TFLM's kernels on this host are not the "
        "microcontroller's speed. Margins: budget minus need (negative: over budget).")


def render_markdown(report: Any) -> list[str]:
    """report.md lines: one section per microcontroller target (nothing when the run had none)."""
    lines: list[str] = []
    for sec in report.mcu:
        budget = f"{sec.ram_kb} KB RAM, {sec.flash_kb} KB flash" if sec.ram_kb is not None else "budgets unknown"
        lines += [f"## Microcontroller: {sec.target} ({budget}, {sec.runtime})", "", NOTE, "",
                  "| artifact | precision | TFLM | agree with LiteRT | arena KB | RAM need KB | RAM margin KB | "
                  "flash need KB | flash margin KB | fits | why not |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for b in fit_rows(report, sec.target):
            m, a = b.mcu, report.artifact(b.artifact_id)
            assert m is not None
            name = (a.name or a.id) if a else b.artifact_id
            chosen = " **(chosen)**" if b.artifact_id == report.chosen_id else ""
            agree = f"{m.tflm_agreement * 100:.2f} %" if m.tflm_agreement is not None else "–"
            why = m.reason or (b.reason if not b.ok else "")
            lines.append(f"| {name}{chosen} | {a.precision if a else ''} | {m.tflm_status or '–'} | {agree} | "
                         f"{_kb(m.arena_bytes)} | {_kb(m.ram_needed_bytes)} | {_kb(m.ram_margin_bytes, True)} | "
                         f"{_kb(m.flash_needed_bytes)} | {_kb(m.flash_margin_bytes, True)} | {_yes(m.fits)} | {why} |")
        cc = sec.cross_compile
        if cc is not None:
            lines += ["", f"Cross-compiled examples/mcu for {cc.cpu or sec.cpu or 'the MCU'}: {cc.status}"
                      + (f" ({cc.reason})" if cc.reason else "") + (f", {cc.toolchain}" if cc.toolchain else "") + "."]
            if cc.size_output:
                lines += ["", "```", cc.size_output, "```"]
        lines.append("")
    return lines
