"""Microcontroller records of the report: a benchmark row's ``mcu`` fit and the per-target ``mcu`` section.

* :class:`McuFit` is a row's ``mcu`` object (location ``tflm``): TFLM's verdict on the file, its
  agreement with LiteRT, the measured arena, and RAM/flash needs against the profile with margins.
* :class:`McuTarget` is one entry of report.json's ``mcu`` list: the profile's budgets and the
  Cortex-M cross-compile of the chosen artifact (``arm-none-eabi-size`` output) or why it was skipped.

The fit table per artifact is read from the benchmark rows (:func:`fit_rows`); renderers draw it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgekit.report._fields import Record, key, rest


@dataclass(frozen=True)
class McuFit(Record):
    """Whether one file fits a microcontroller profile, as measured on TFLM's kernels (a row's ``mcu``)."""

    fits: bool | None = key(None)  # None: not decided (TFLM not installed)
    reason: str = key("")
    target: str | None = key(None)
    runtime: str | None = key(None)
    fits_ram: bool | None = key(None)
    fits_flash: bool | None = key(None)
    arena_bytes: int | None = key(None)
    model_bytes: int | None = key(None)
    runtime_ram_bytes: int | None = key(None)
    runtime_flash_bytes: int | None = key(None)
    ram_bytes: int | None = key(None)
    flash_bytes: int | None = key(None)
    ram_needed_bytes: int | None = key(None)
    flash_needed_bytes: int | None = key(None)
    ram_margin_bytes: int | None = key(None)
    flash_margin_bytes: int | None = key(None)
    tflm_images: int | None = key(None)
    unsupported_ops: tuple[str, ...] = key(())
    tflm_status: str | None = key(None)  # ok | unsupported | failed | skipped
    tflm_agreement: float | None = key(None)  # top-1 agreement with LiteRT on the same file
    tflm_version: str | None = key(None)
    latency: str | None = key(None)  # why there is no latency figure
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class CrossCompile(Record):
    """The examples/mcu firmware built around the chosen model for a Cortex-M (``arm-none-eabi-size``)."""

    status: str = key()  # ok | skipped | failed
    reason: str = key("")
    cpu: str | None = key(None)
    artifact_id: str | None = key(None)
    toolchain: str | None = key(None)
    model: Mapping[str, Any] | None = key(None)  # the model's C array object: text/data/bss/flash/ram bytes
    firmware: Mapping[str, Any] | None = key(None)  # the whole image
    arena_bytes: int | None = key(None)  # MODEL_ARENA_BYTES in the generated header
    size_output: str = key("")
    extra: Mapping[str, Any] = rest()


@dataclass(frozen=True)
class McuTarget(Record):
    """One microcontroller profile of the run: its budgets, and the chosen artifact's cross-compiled size."""

    target: str = key()
    runtime: str = key("tflite-micro")
    cpu: str = key("")
    ram_kb: int | None = key(None)
    flash_kb: int | None = key(None)
    runtime_ram_kb: int | None = key(None)
    runtime_flash_kb: int | None = key(None)
    cross_compile: CrossCompile | None = key(None)
    extra: Mapping[str, Any] = rest()


def fit_rows(report: Any, target: str) -> list[Any]:
    """The benchmark rows (``BenchRow``) of ``target`` in ``report`` (a ``Report``; typed loosely, this module sits
    below :mod:`edgekit.report.model`) that carry a fit, one per .tflite artifact, in artifact order."""
    order = {a.id: i for i, a in enumerate(report.artifacts)}
    rows = [b for b in report.benchmarks if b.target == target and b.mcu is not None]
    return sorted(rows, key=lambda b: order.get(b.artifact_id, len(order)))


NOTE = ("Arena: the tensor arena TFLM used on this host (its 64-bit build: a safe upper bound for a 32-bit core); "
        "runtime RAM/flash: the profile's estimates for the interpreter and kernels. Agreement: top-1 agreement of "
        "TFLM with LiteRT on the same file and test images. No latency: TFLM's kernels on this host are not the "
        "microcontroller's speed. Margins: budget minus need (negative: over budget).")
