"""``report.md``: the one results table people read, plus verification and problems."""

from __future__ import annotations

from typing import Any, Iterable


def _fmt(v: Any, spec: str, none: str = "–") -> str:
    return none if v is None else format(v, spec)


def reference_ids(report: dict[str, Any]) -> dict[str, str]:
    """Format → id of the fp32 reference (the trained model and its direct fp32 exports)."""
    base = report.get("baseline_id")
    refs: dict[str, str] = {}
    for a in report["artifacts"]:
        if a["id"] == base:
            refs["keras"] = a["id"]
        elif a["parent_id"] == base and a["precision"] == "fp32" and a["stage"].startswith("export."):
            refs.setdefault(a["format"], a["id"])
    return refs


def find_row(rows: Iterable[dict[str, Any]], artifact_id: str, target: str, batch: int | None = 1,
             threads: int | None = 1) -> dict[str, Any] | None:
    """The benchmark row for an artifact on a target at (batch, threads); None where absent."""
    for r in rows:
        if r["artifact_id"] == artifact_id and r["target"] == target and \
                (batch is None or r["batch_size"] == batch) and (threads is None or r["threads"] == threads):
            return r
    return None


def best_throughput(rows: Iterable[dict[str, Any]], artifact_id: str, target: str) -> float | None:
    vals = [r["throughput_per_s"] for r in rows if r["artifact_id"] == artifact_id and r["target"] == target
            and r["status"] == "ok" and r.get("throughput_per_s")]
    return max(vals) if vals else None


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per artifact × target (keras artifacts once, without latency): the report table's data."""
    arts = {a["id"]: a for a in report["artifacts"]}
    refs = reference_ids(report)
    base_acc = arts.get(report.get("baseline_id") or "", {}).get("accuracy")
    targets = [t["name"] for t in report.get("targets", [])] or sorted({r["target"] for r in report["benchmarks"]})
    out = []
    for a in report["artifacts"]:
        ref = arts.get(refs.get(a["format"], ""))
        common = {
            "artifact": a["name"] or a["id"], "id": a["id"], "stage": a["stage"], "format": a["format"],
            "precision": a["precision"], "kb": a["bytes"] / 1024.0,
            "smaller": (ref["bytes"] / a["bytes"]) if ref and a["bytes"] else None,
            "accuracy": a.get("accuracy"),
            "delta_pp": (a["accuracy"] - base_acc) * 100.0 if a.get("accuracy") is not None and base_acc is not None else None,
        }
        rows_for = [t for t in targets if find_row(report["benchmarks"], a["id"], t, None, None)]
        if not rows_for:
            out.append({**common, "target": "", "p50": None, "p90": None, "throughput": None, "provider": "", "status": "", "emulated": False})
        for t in rows_for:
            r = find_row(report["benchmarks"], a["id"], t) or find_row(report["benchmarks"], a["id"], t, None, None) or {}
            lat = r.get("latency_ms") or {}
            out.append({**common, "target": t, "p50": lat.get("p50"), "p90": lat.get("p90"),
                        "throughput": best_throughput(report["benchmarks"], a["id"], t), "provider": r.get("provider") or "",
                        "status": r.get("status", ""), "reason": r.get("reason", ""), "emulated": bool(r.get("emulated"))})
    return out


def render_table(report: dict[str, Any]) -> str:
    """The results table in Markdown."""
    head = ("| artifact | format | precision | size KB | × smaller | accuracy | Δ pp | p50 ms | p90 ms | "
            "throughput/s | provider | target |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for r in table_rows(report):
        emu = " (emulated)" if r["emulated"] else ""
        status = "" if r["status"] in ("ok", "") else f" ({r['status']})"
        lines.append(
            f"| {r['artifact']} | {r['format']} | {r['precision']} | {r['kb']:.1f} | {_fmt(r['smaller'], '.2f')}× | "
            f"{_fmt(r['accuracy'] * 100 if r['accuracy'] is not None else None, '.2f')} % | {_fmt(r['delta_pp'], '+.2f')} | "
            f"{_fmt(r['p50'], '.3f')}{emu} | {_fmt(r['p90'], '.3f')}{emu} | {_fmt(r['throughput'], '.0f')} | "
            f"{r['provider']}{status} | {r['target']} |")
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    """The whole ``report.md``."""
    ds = report["dataset"]
    lines = [
        f"# edgekit report ({report.get('status', 'ok')})",
        "",
        f"Dataset **{ds['name']}** ({ds['train_size']} train / {ds.get('val_size', 0)} validation / {ds['test_size']} test), "
        f"seed {report.get('seed')}, edgekit {report['edgekit_version']}.",
        "",
        "Latency: p50/p90 at batch 1 with 1 thread; throughput: the best over the batch sizes and thread counts measured. "
        "× smaller: against the fp32 model of the same format. Δ pp: test accuracy against the trained fp32 model.",
        "",
        render_table(report),
        "",
    ]
    verified = [a for a in report["artifacts"] if a.get("verification")]
    if verified:
        lines += ["## Verification against the parent model", "",
                  "| artifact | parent | max abs diff | top-1 agreement | Δ accuracy pp | status |", "|---|---|---|---|---|---|"]
        names = {a["id"]: a["name"] for a in report["artifacts"]}
        for a in verified:
            v = a["verification"]
            lines.append(f"| {a['name']} | {names.get(v['parent_id'], v['parent_id'])} | {v['max_abs_diff']:.2e} | "
                         f"{v['top1_agreement'] * 100:.2f} % | {v['accuracy_delta_pp']:+.2f} | {v['status']} {v['reason']} |")
        lines.append("")
    skipped = sorted({(r["target"], r["status"], r["reason"]) for r in report["benchmarks"] if r["status"] != "ok"})
    if skipped:
        lines += ["## Benchmarks not run", ""] + [f"- {t}: {s} — {why}" for t, s, why in skipped] + [""]
    if report.get("search"):
        s = report["search"]
        lines += ["## Accuracy-budget search", "", f"{s.get('summary', '')}", "",
                  "Validation accuracy (never the test set) against the trained fp32 model; p50 at batch 1, 1 thread on "
                  f"{s.get('target')}. ★ = Pareto front (accuracy, size, latency), ✓ = within the budget.", "",
                  "| candidate | format | precision | KB | val accuracy | val drop pp | p50 ms | front | budget |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in sorted(s.get("candidates", []), key=lambda c: c["bytes"]):
            mark = " **(chosen)**" if c["id"] == s.get("chosen_id") else ""
            lines.append(f"| {c['name']}{mark} | {c['format']} | {c['precision']} | {c['bytes'] / 1024:.1f} | "
                         f"{c['val_accuracy'] * 100:.2f} % | {c['val_drop_pp']:+.2f} | {_fmt(c['latency_ms'], '.3f')} | "
                         f"{'★' if c['on_front'] else ''} | {'✓' if c['within_budget'] else ''} |")
        lines.append("")
    if report.get("problems"):
        lines += ["## Problems", ""] + [f"- {p}" for p in report["problems"]] + [""]
    return "\n".join(lines)
