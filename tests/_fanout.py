"""The small --search run the fan-out tests compare across executors (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.config import CompressConfig
from edgekit.fsutil import sha256_file


def search_slice(out: Path, **extra: Any) -> dict[str, Any]:
    """A 2-candidate search (sparsity 0 / 0.8, int8) on a Fashion-MNIST slice, no benchmark: the chosen id,
    report.json's executor and every artifact's (id, sha256) by name."""
    import edgekit

    cfg = CompressConfig(dataset="fashion-mnist", train_limit=600, test_limit=200, epochs=1, prune_epochs=1,
                         search=True, search_structured=(0.0,), search_sparsity=(0.0, 0.8),
                         search_quantization=("ptq-int8",), bench=False, **extra)
    result = edgekit.compress(cfg, out)
    report = json.loads((out / "report.json").read_text())
    return {"chosen": report["search"]["chosen_id"], "executor": report.get("executor"),
            "files": {a.name: (a.id, sha256_file(a.path)) for a in result.artifacts}}
