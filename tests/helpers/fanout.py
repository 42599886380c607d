"""The small --search run the fan-out tests compare across executors: the same plan, in process and fanned out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgekit.config import CompressConfig
from edgekit.fsutil import sha256_file

# a 2-candidate search (sparsity 0 / 0.8, int8) on a Fashion-MNIST slice, no benchmark
SETTINGS: dict[str, Any] = {"dataset": "fashion-mnist", "train_limit": 600, "test_limit": 200, "epochs": 1,
                            "prune_epochs": 1, "search": True, "search_structured": (0.0,),
                            "search_sparsity": (0.0, 0.8), "search_quantization": ("ptq-int8",), "bench": False}
FLAGS = ["--dataset", "fashion-mnist", "--train-limit", "600", "--test-limit", "200", "--epochs", "1",
         "--prune-epochs", "1", "--search", "--search-structured", "0", "--search-sparsity", "0,0.8",
         "--search-quantization", "ptq-int8", "--no-bench"]


def read_run(out: Path) -> dict[str, Any]:
    """The chosen id, report.json's executor, and every artifact's (id, sha256 of its file) by name."""
    report = json.loads((out / "report.json").read_text())
    return {"chosen": report["search"]["chosen_id"], "executor": report.get("executor"),
            "files": {a["name"]: (a["id"], sha256_file(out / a["path"])) for a in report["artifacts"]}}


def search_slice(out: Path, **extra: Any) -> dict[str, Any]:
    """The search through the Python API, in this process."""
    import edgekit

    edgekit.compress(CompressConfig(**SETTINGS, **extra), out)
    return read_run(out)


def search_slice_cli(out: Path, *flags: str, env: dict[str, str]) -> dict[str, Any]:
    """The search as a user runs it: `edgekit compress` as its own driver process."""
    r = subprocess.run([sys.executable, "-m", "edgekit", "-q", "compress", *FLAGS, *flags, "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return read_run(out)
