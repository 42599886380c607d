"""The accuracy-budget search on the full Fashion-MNIST: the recipe grid (``--search``, default grid
structured {0, 0.25, 0.5} × sparsity {0, 0.8} × the default quantization modes) inside a 0.5 pp budget.

Runs the command below and writes the chosen candidate and the whole candidate table
(Pareto front marked) into benchmarks/RESULTS.md (section "search-fashion"), with the command that made the
report (read from its report.json, so a ``--reuse`` shows the run it read, not a guess).

    python benchmarks/search_fashion.py [--budget 0.5] [--out runs/search-fm]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", default="0.5")
    ap.add_argument("--out", default="runs/search-fm")
    ap.add_argument("--reuse", action="store_true", help="read an existing run's report.json instead of running")
    args = ap.parse_args()
    command = ["edgekit", "compress", "--dataset", "fashion-mnist", "--search", "--max-accuracy-drop", args.budget,
               "--out", args.out, "--force"]
    if not args.reuse:
        code = subprocess.run(command, check=False).returncode
        print(f"edgekit exited with {code}")
    report = json.loads((Path(args.out) / "report.json").read_text())
    ran = report.get("command") or " ".join(command)
    if "--search" not in ran.split():
        print(f"{args.out} was not made by a --search run: {ran}", file=sys.stderr)
        return 2
    how = ("read back by `python benchmarks/search_fashion.py --reuse`" if args.reuse else
           "run by `python benchmarks/search_fashion.py`")
    md = (Path(args.out) / "report.md").read_text()
    section = md[md.index("## Accuracy-budget search"):]
    section = section[: section.index("\n## ", 4)] if "\n## " in section[4:] else section
    arts = {a["id"]: a for a in report["artifacts"]}
    base = next(a for a in report["artifacts"] if a["stage"] == "train")
    chosen = arts.get(report.get("chosen_id") or "")
    lines = [
        "## Accuracy-budget search on Fashion-MNIST", "",
        f"Command: `{ran}` ({how})", "",
        f"Machine: {machine_line()}. Run took {report.get('seconds', 0):.0f} s; run status: {report.get('status')}; "
        f"search status: {report['search']['status']}.", "",
    ]
    if chosen:
        fp32 = next(a for a in report["artifacts"] if a["name"] == "baseline-" + chosen["format"])
        lines += [f"Chosen on validation accuracy: **{chosen['name']}**, {chosen['bytes'] / 1024:.1f} KB "
                  f"({fp32['bytes'] / chosen['bytes']:.1f}× smaller than the fp32 {chosen['format']} baseline); "
                  f"test accuracy {chosen['accuracy'] * 100:.2f} % "
                  f"vs {base['accuracy'] * 100:.2f} % for the trained fp32 model "
                  f"({(chosen['accuracy'] - base['accuracy']) * 100:+.2f} pp, the test set was not used to choose).", ""]
    lines += section.splitlines()[1:]
    update_section("search-fashion", "\n".join(lines))
    print("\n".join(lines))
    return 0 if report["search"]["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
