""""% of peak" on benchmark rows: the model's MACs × images/s ÷ the GEMM peak measured where the row ran.

The runner puts the peak on each ``ok`` row (:mod:`edgekit.runtime.peak`: ``peak_gmacs``,
``peak_kernel``, ``peak_reason``); this module adds the model's MACs per image, counted by the
one MAC counter (the format's audit, :func:`edgekit.audit.audit_model`, which applies
:func:`edgekit.models.flops.kernel_macs`), and ``percent_of_peak``. A row whose peak or MAC count
is unknown keeps an empty figure and says why in ``peak_reason``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgekit.artifact import Artifact
from edgekit.errors import EdgekitError
from edgekit.report.model import BenchRow
from edgekit.runtime.peak import over_peak, percent_of_peak

log = logging.getLogger(__name__)

PEAK_FIELDS = BenchRow.keys("peak")
"""The fields this adds to a benchmark row (declared by :class:`BenchRow`; absent in older reports)."""


def model_macs(path: str | Path) -> tuple[int | None, str]:
    """MACs per image of a model file from its audit, or (None, why not)."""
    from edgekit.audit import audit_model

    try:
        macs = audit_model(path).get("macs")
    except EdgekitError as e:
        return None, f"no MAC count: {e}"
    if not isinstance(macs, int) or macs <= 0:
        return None, "no MAC count: the audit found no convolution or dense layer"
    return macs, ""


def add_percent_of_peak(rows: list[dict[str, Any]], artifacts: Iterable[Artifact]) -> list[dict[str, Any]]:
    """Give every ok row of ``rows`` its MACs per image and % of peak (in place; returns ``rows``)."""
    paths = {a.id: a.path for a in artifacts}
    macs: dict[str, tuple[int | None, str]] = {}
    for row in rows:
        if row.get("status") != "ok" or row.get("mcu") is not None or row.get("artifact_id") not in paths:
            continue  # a microcontroller row has no throughput to set against a peak
        aid = row["artifact_id"]
        if aid not in macs:
            macs[aid] = model_macs(paths[aid])
        count, why = macs[aid]
        row["macs_per_image"] = count
        peak, ips = row.get("peak_gmacs"), row.get("throughput_per_s")
        if count is None:
            row["peak_reason"] = why
        elif not peak:
            row["peak_reason"] = row.get("peak_reason") or "no GEMM peak was measured where this row ran"
        elif ips is None or ips != ips:  # NaN: no timed run
            row["peak_reason"] = "no throughput measured"
        else:
            row["percent_of_peak"] = percent_of_peak(count, float(ips), float(peak) * 1e9)
    for line in over_peak_warnings(rows):
        log.warning("%s", line)
    return rows


def over_peak_warnings(rows: Iterable[dict[str, Any]], names: dict[str, str] | None = None) -> list[str]:
    """One line per ok row above 100 % of its peak: a bug to chase (the peak measured too low, or MACs counted
    that the row never ran), never a figure to report."""
    out = []
    for r in rows:
        pct = r.get("percent_of_peak")
        if r.get("status") == "ok" and over_peak(pct):
            name = (names or {}).get(r.get("artifact_id", ""), r.get("artifact_id", "?"))
            out.append(f"{name}: {pct:.1f} % of the {r.get('peak_kernel')} GEMM peak ({r.get('peak_gmacs', 0):.1f} "
                       f"GMAC/s) on {r.get('target')}, batch {r.get('batch_size')}, {r.get('threads')} threads: "
                       "above 100 % is a measurement or MAC-count bug (or MACs a sparse kernel skipped)")
    return out
