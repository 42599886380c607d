"""Does the accuracy budget mean what it says on small data? Coverage of the certified files on resampled datasets.

Each run draws a fresh small dataset, runs the default ``edgekit compress`` pipeline on it (``--no-bench``, the
artifact cache on) and then looks at the test split, which nothing in the run chose or certified on:

- a *violation*: any file the run certified within the budget (``budget.checks[*].within_budget``) whose test drop
  against the trained model exceeds the budget. The promise is "within the budget at 95 %", so violations should
  occur in at most 5 % of runs (the test drop is itself measured on 1,000 images, so this count is conservative);
- the chosen file's size against the fp32 file of its format (the plain export of the trained model): the goal is
  a median of at least 3.5× smaller;
- the wall time of the run.

Datasets alternate between Fashion-MNIST (4,000 training images and 1,000 test images drawn afresh each run; the
unused training images, up to 10,000, are passed as ``--unlabeled-dir``: images no step trains or calibrates on)
and scikit-learn's digits (1,797 images split afresh 80/20; no unlabelled images). Writes the ``budget-coverage``
section of benchmarks/RESULTS.md.

    python benchmarks/budget_coverage.py --runs 20        # the full study
    python benchmarks/budget_coverage.py --runs 20 --log cov.jsonl  # resumable
    python benchmarks/budget_coverage.py --runs 3 --quick # a smoke run: 1 training epoch, smaller subsets
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402


def _fashion(rng: np.random.Generator, n_train: int, n_test: int, n_unlabelled: int, folder: Path) -> tuple[Path, Path]:
    """A resampled Fashion-MNIST subset as an .npz, and the unused training images as an unlabelled .npz."""
    from edgekit.data.datasets import _load_fashion_mnist

    raw = _load_fashion_mnist()
    order = rng.permutation(len(raw.x_train))
    train, unused = order[:n_train], order[n_train:n_train + n_unlabelled]
    test = rng.permutation(len(raw.x_test))[:n_test]
    data, extra = folder / "data" / "fashion.npz", folder / "unlabelled" / "x.npz"
    data.parent.mkdir(parents=True)
    extra.parent.mkdir(parents=True)
    np.savez(data, x_train=raw.x_train[train], y_train=raw.y_train[train], x_test=raw.x_test[test],
             y_test=raw.y_test[test], labels=np.asarray(raw.labels))
    np.savez(extra, x=raw.x_train[unused])
    return data, extra


def _digits(rng: np.random.Generator, folder: Path) -> Path:
    """scikit-learn's digits, split afresh 80/20, as an .npz."""
    from edgekit.data.datasets import _load_digits

    raw = _load_digits()
    x, y = np.concatenate([raw.x_train, raw.x_test]), np.concatenate([raw.y_train, raw.y_test])
    order = rng.permutation(len(x))
    n_test = len(x) // 5
    data = folder / "data" / "digits.npz"
    data.parent.mkdir(parents=True)
    np.savez(data, x_train=x[order[n_test:]], y_train=y[order[n_test:]], x_test=x[order[:n_test]],
             y_test=y[order[:n_test]], labels=np.asarray(raw.labels))
    return data


def outcome(report: dict[str, Any]) -> dict[str, Any]:
    """A finished run's certified files, their test drops, the chosen file and its size ratio."""
    budget = float(report["budget"]["budget_pp"])
    arts = {a["name"]: a for a in report["artifacts"]}
    trained = next(a for a in report["artifacts"] if a["stage"] == "train")
    checks = report["budget"].get("checks", {})
    test_drop = {name: round((trained["accuracy"] - arts[name]["accuracy"]) * 100.0, 3) for name in checks}
    certified = [name for name, c in checks.items() if c.get("within_budget")]
    chosen = next((a for a in report["artifacts"] if a["id"] == report.get("chosen_id")), None)
    ratio = None
    if chosen is not None:
        base = next((a for a in report["artifacts"] if a["parent_id"] == trained["id"]
                     and a["format"] == chosen["format"] and a["precision"] == "fp32"
                     and a["stage"].startswith("export.")), None)
        if base is not None and chosen.get("bytes"):
            ratio = base["bytes"] / chosen["bytes"]
    worst = max((test_drop[n] for n in certified), default=None)
    return {"certified": certified, "worst_certified_test_drop": worst,
            "violation": worst is not None and worst > budget + 1e-9, "chosen": chosen["name"] if chosen else None,
            "size_ratio": ratio, "smallest_budget_pp": _smallest(report["budget"].get("margin", {})),
            "status": report.get("status")}


def _smallest(margin: dict[str, Any]) -> str:
    """'labelled / unlabelled' smallest certifiable budgets (pp) of a run."""
    return " / ".join(str(margin[k]) for k in ("smallest_budget_pp", "smallest_unlabelled_budget_pp") if k in margin)


def run_once(i: int, quick: bool, workdir: Path) -> dict[str, Any]:
    from edgekit.config import CompressConfig
    from edgekit.pipeline import compress

    rng = np.random.default_rng(1000 + i)
    folder = workdir / f"run{i}"
    kind = "fashion-mnist" if i % 2 == 0 else "digits"
    unlabelled = None
    if kind == "fashion-mnist":
        data, unlabelled = _fashion(rng, 1500 if quick else 4000, 500 if quick else 1000, 3000 if quick else 10000,
                                    folder)
    else:
        data = _digits(rng, folder)
    cfg = CompressConfig(data_dir=str(data), unlabeled_dir=str(unlabelled) if unlabelled else None, bench=False,
                         **({"epochs": 1} if quick else {}))
    started = time.perf_counter()
    result = compress(cfg, folder / "out", force=True)
    seconds = time.perf_counter() - started
    return {"run": i, "data": kind, "seconds": round(seconds, 1), **outcome(result.report)}


def _medians_by_data(rows: list[dict[str, Any]]) -> str:
    """'fashion-mnist 10.40× (10 runs), digits 1.00× (10 runs)': the chosen file's median ratio per dataset."""
    out = []
    for kind in dict.fromkeys(r["data"] for r in rows):
        per = [r["size_ratio"] for r in rows if r["data"] == kind and r["size_ratio"] is not None]
        if per:
            out.append(f"{kind} {statistics.median(per):.2f}× ({len(per)} runs)")
    return ", ".join(out)


def render(rows: list[dict[str, Any]], planned: int, quick: bool, command: str) -> str:
    """The ``budget-coverage`` section for the runs so far (of ``planned``)."""
    violations = sum(r["violation"] for r in rows)
    ratios = [r["size_ratio"] for r in rows if r["size_ratio"] is not None]
    done = f"{len(rows)}" if len(rows) == planned else f"{len(rows)} of the {planned} planned (the study is unfinished)"
    lines = ["## Does the budget hold on small data? (coverage on resampled datasets)", "",
             f"Command: `{command.strip()}`", "",
             f"Machine: {machine_line()}. Default pipeline, `--no-bench`, 1 pp budget at 95 %, certified on images "
             "that chose nothing; test drops against the trained model on the test split (never used by the run). "
             + ("Quick: 1 training epoch, Fashion-MNIST subsets of 1,500 training / 500 test / 3,000 unlabelled "
                "images." if quick else "Fashion-MNIST subsets of 4,000 training / 1,000 test / 10,000 "
                "unlabelled images."),
             "", f"- runs: {done}; runs in which a certified file's test drop exceeded the budget: "
             f"**{violations}** ({violations / max(len(rows), 1):.0%}; goal ≤ 5 %)",
             f"- chosen file vs the fp32 file of its format: median **{statistics.median(ratios):.2f}×** smaller "
             f"(goal ≥ 3.5×); by dataset: {_medians_by_data(rows)}; {sum(r >= 3.5 for r in ratios)} of "
             f"{len(ratios)} runs at 3.5× or more" if ratios else "- no chosen file",
             f"- wall time per run: median {statistics.median(r['seconds'] for r in rows):.0f} s", "",
             "| run | data | status | chosen | size × | certified | worst certified test drop (pp) | "
             "smallest certifiable (pp, labelled / unlabelled) | s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        worst = "" if r["worst_certified_test_drop"] is None else f"{r['worst_certified_test_drop']:+.2f}"
        ratio = "" if r["size_ratio"] is None else f"{r['size_ratio']:.2f}"
        lines.append(f"| {r['run']} | {r['data']} | {r['status']} | {r['chosen']} | {ratio} | {len(r['certified'])} | "
                     f"{worst}{' **violation**' if r['violation'] else ''} | {r['smallest_budget_pp']} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="resampled datasets (default 20)")
    ap.add_argument("--quick", action="store_true", help="1 training epoch and smaller Fashion-MNIST subsets")
    ap.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--log", type=Path, default=None,
                    help="append each run's outcome here (JSON lines) and skip the runs it already holds")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    if args.log is not None and args.log.is_file():
        rows = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r.get("quick", False) == args.quick and r["run"] < args.runs]
    command = "python benchmarks/budget_coverage.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        for i in range(args.runs):
            if any(r["run"] == i for r in rows):
                continue
            rows.append({**run_once(i, args.quick, work), "quick": args.quick})
            rows.sort(key=lambda r: r["run"])
            line = json.dumps(next(r for r in rows if r["run"] == i))
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            if args.log is not None:
                with args.log.open("a") as f:
                    f.write(line + "\n")
            update_section("budget-coverage", render(rows, args.runs, args.quick, command))
    body = render(rows, args.runs, args.quick, command)
    update_section("budget-coverage", body)
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
