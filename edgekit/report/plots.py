"""Report figures as self-contained SVG data URIs (matplotlib, Agg, imported lazily).

Every function returns a ``data:image/svg+xml;base64,...`` string to put in an
``<img src>``: no files, no network, and each figure's SVG ids stay private to it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


MAX_LABELLED_POINTS = 16
"""Beyond this many points only the Pareto front is labelled (the rest stay readable as markers)."""

# Where a point's label may go, tried in order: (dx, dy) in points from the marker, horizontal alignment.
LABEL_OFFSETS: tuple[tuple[float, float, str], ...] = (
    (6, 3, "left"), (6, -9, "left"), (-6, 3, "right"), (-6, -9, "right"),
    (6, 11, "left"), (6, -17, "left"), (-6, 11, "right"), (-6, -17, "right"),
)


def _overlaps(box: Any, others: Sequence[Any], pad: float = 4.0) -> bool:
    return any(box.x0 - pad < o.x1 and o.x0 - pad < box.x1 and box.y0 - pad < o.y1 and o.y0 - pad < box.y1
               for o in others)


def _place_labels(fig: Any, ax: Any, points: Sequence[Point], labelled: Sequence[int]) -> None:
    """Annotate ``points[i]`` for i in ``labelled`` so that no two labels overlap each other or the axes' edge.

    Each label tries the positions in :data:`LABEL_OFFSETS`; when none is free it is stacked
    further away with a thin leader line to its marker.
    """
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken: list[Any] = []
    order = sorted(labelled, key=lambda i: (-points[i].accuracy, points[i].latency_ms))
    for i in order:
        p = points[i]
        xy = (p.latency_ms, p.accuracy * 100)
        ann = None
        tries = [(dx, dy, ha, False) for dx, dy, ha in LABEL_OFFSETS]
        tries += [(sx * 14, sy * (20 + 9 * k), "left" if sx > 0 else "right", True)
                  for k in range(12) for sy in (-1, 1) for sx in (1, -1)]
        for dx, dy, ha, lead in tries:
            if ann is not None:
                ann.remove()
            ann = ax.annotate(p.label, xy, textcoords="offset points", xytext=(dx, dy), fontsize=7, ha=ha,
                              va="bottom", zorder=5, annotation_clip=False,
                              arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.6,
                                          "shrinkA": 0, "shrinkB": 3} if lead else None)
            box = ann.get_window_extent(renderer)
            inside = (box.x0 >= frame.x0 - 2 and box.x1 <= frame.x1 + 40
                      and box.y0 >= frame.y0 and box.y1 <= frame.y1 + 8)
            if inside and not _overlaps(box, taken):
                break
        if ann is not None:
            taken.append(ann.get_window_extent(renderer))


def accuracy_latency(points: Sequence[Point], title: str, xlabel: str = "p50 latency (ms)",
                     ylabel: str = "accuracy (%)") -> str:
    """Scatter of accuracy vs latency with the Pareto front drawn as a step line.

    Labels are placed so they do not overlap (leader lines when crowded); the legend sits
    below the axes, never on the data.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for p in points:
        ax.scatter(p.latency_ms, p.accuracy * 100, s=46, zorder=3,
                   color=PRECISION_COLOURS.get(p.precision, FALLBACK_COLOUR),
                   marker=FORMAT_MARKERS.get(p.format, "o"), edgecolors="black", linewidths=0.5)
    front_idx = pareto_indices(points)
    front = [points[i] for i in front_idx]
    if front:
        ax.step([p.latency_ms for p in front], [p.accuracy * 100 for p in front], where="post",
                color="#dd8452", linewidth=1.5, zorder=2, label="Pareto front")
        ax.scatter([p.latency_ms for p in front], [p.accuracy * 100 for p in front], s=150, facecolors="none",
                   edgecolors="#dd8452", linewidths=1.5, zorder=4)
    for prec, colour in PRECISION_COLOURS.items():
        if any(p.precision == prec for p in points):
            ax.scatter([], [], color=colour, label=prec, edgecolors="black", linewidths=0.5)
    for fmt, marker in FORMAT_MARKERS.items():
        if any(p.format == fmt for p in points):
            ax.scatter([], [], color="white", marker=marker, label=fmt, edgecolors="black", linewidths=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.12, y=0.18)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=max(1, len(handles)), fontsize=7, frameon=False)
    fig.tight_layout()
    labelled = range(len(points)) if len(points) <= MAX_LABELLED_POINTS else front_idx
    _place_labels(fig, ax, points, list(labelled))
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


def layer_sensitivity(names: Sequence[str], drops_pp: Sequence[float], protected: Sequence[bool],
                      budget_pp: float | None = None) -> str:
    """Bars of each layer's worst validation-accuracy drop (pp), most sensitive first; protected layers in red."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.36 * max(1, len(names))))
    ys = list(range(len(names)))
    ax.barh(ys, list(drops_pp), color=["#c44e52" if p else "#4c72b0" for p in protected])
    for y, d, p in zip(ys, drops_pp, protected):
        ax.text(max(d, 0.0), y, f" {d:+.2f} pp" + (" (protected)" if p else ""), va="center", fontsize=7)
    if budget_pp is not None:
        ax.axvline(budget_pp, color="#dd8452", linestyle="--", linewidth=1.2, label=f"budget {budget_pp:g} pp")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.set_yticks(ys, list(names))
    ax.invert_yaxis()
    ax.margins(x=0.25)
    ax.set_xlabel("worst validation-accuracy drop with only this layer changed (pp)")
    ax.set_title("Per-layer sensitivity (most sensitive first)")
    return _to_data_uri(fig)


def trial_histories(curves: Sequence[tuple[str, Sequence[float]]]) -> str:
    """Validation accuracy (%) after each epoch, one line per tuning trial."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for label, history in curves:
        ax.plot(range(1, len(history) + 1), [h * 100 for h in history], marker="o", markersize=3, linewidth=1.2,
                label=f"trial {label}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Tuning trials: validation accuracy per epoch")
    ax.grid(True, alpha=0.3)
    if len(curves) <= 12:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(6, len(curves)), fontsize=7, frameon=False)
    return _to_data_uri(fig)
