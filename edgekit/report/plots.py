"""Report figures as self-contained SVG data URIs (matplotlib, Agg, imported lazily).

Every function returns a ``data:image/svg+xml;base64,...`` string to put in an
``<img src>``: no files, no network, and each figure's SVG ids stay private to it.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any, Sequence

# Colours per precision (the one palette; unknown precisions fall back to grey).
PRECISION_COLOURS: dict[str, str] = {"fp32": "#4c72b0", "fp16": "#55a868", "int8": "#c44e52", "mixed": "#8172b2"}
FORMAT_MARKERS: dict[str, str] = {"keras": "s", "tflite": "o", "onnx": "^"}
FALLBACK_COLOUR = "#777777"


@dataclass(frozen=True)
class Point:
    """One model on an accuracy-vs-latency plot."""

    label: str
    latency_ms: float
    accuracy: float  # fraction in [0, 1]
    precision: str = ""
    format: str = ""


def pareto_indices(points: Sequence[Point]) -> list[int]:
    """Indices of points no other point beats on both latency (lower) and accuracy (higher), by latency."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            q.latency_ms <= p.latency_ms and q.accuracy >= p.accuracy
            and (q.latency_ms < p.latency_ms or q.accuracy > p.accuracy)
            for j, q in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i].latency_ms, -points[i].accuracy))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "edgekit", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _to_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    fig.clf()
    _pyplot().close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def accuracy_latency(points: Sequence[Point], title: str, xlabel: str = "p50 latency (ms)") -> str:
    """Scatter of accuracy vs latency with the Pareto front drawn as a step line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for p in points:
        ax.scatter(p.latency_ms, p.accuracy * 100, s=46, zorder=3,
                   color=PRECISION_COLOURS.get(p.precision, FALLBACK_COLOUR),
                   marker=FORMAT_MARKERS.get(p.format, "o"), edgecolors="black", linewidths=0.5)
        ax.annotate(p.label, (p.latency_ms, p.accuracy * 100), textcoords="offset points", xytext=(5, 4), fontsize=7)
    front = [points[i] for i in pareto_indices(points)]
    if front:
        ax.step([p.latency_ms for p in front], [p.accuracy * 100 for p in front], where="post",
                color="#dd8452", linewidth=1.5, zorder=2, label="Pareto front")
        ax.scatter([p.latency_ms for p in front], [p.accuracy * 100 for p in front], s=150, facecolors="none",
                   edgecolors="#dd8452", linewidths=1.5, zorder=4)
    for prec, colour in PRECISION_COLOURS.items():
        if any(p.precision == prec for p in points):
            ax.scatter([], [], color=colour, label=prec, edgecolors="black", linewidths=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return _to_data_uri(fig)


def sizes(names: Sequence[str], raw_bytes: Sequence[float | None], gzip_bytes: Sequence[float | None]) -> str:
    """Horizontal bars of raw and gzipped size (KB) per artifact."""
    plt = _pyplot()
    n = len(names)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.42 * n))
    ys = list(range(n))
    raw = [(b or 0) / 1024 for b in raw_bytes]
    gz = [(b or 0) / 1024 for b in gzip_bytes]
    ax.barh([y - 0.2 for y in ys], raw, height=0.4, color="#4c72b0", label="raw")
    ax.barh([y + 0.2 for y in ys], gz, height=0.4, color="#55a868", label="gzipped")
    for y, r, g in zip(ys, raw, gz):
        ax.text(r, y - 0.2, f" {r:,.0f}", va="center", fontsize=7)
        ax.text(g, y + 0.2, f" {g:,.0f}", va="center", fontsize=7)
    ax.set_yticks(ys, list(names))
    ax.invert_yaxis()
    ax.set_xlabel("size (KB)")
    ax.set_title("Model size: raw and gzipped")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.margins(x=0.15)
    return _to_data_uri(fig)


def layer_sparsity(names: Sequence[str], zeros: Sequence[float], dtypes: Sequence[str]) -> str:
    """Bars of the zero fraction of each layer's weights, coloured by weight dtype."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.36 * len(names)))
    colours = {"int8": "#c44e52", "float16": "#55a868", "float32": "#4c72b0"}
    ys = list(range(len(names)))
    ax.barh(ys, [z * 100 for z in zeros], color=[colours.get(d, FALLBACK_COLOUR) for d in dtypes])
    for y, z, d in zip(ys, zeros, dtypes):
        ax.text(z * 100, y, f" {z * 100:.0f}% ({d})", va="center", fontsize=7)
    ax.set_yticks(ys, list(names))
    ax.invert_yaxis()
    ax.set_xlim(0, 115)
    ax.set_xlabel("zero weights (%)")
    ax.set_title("Per-layer sparsity (bar colour = weight dtype)")
    return _to_data_uri(fig)
