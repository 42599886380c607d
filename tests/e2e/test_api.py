"""The small public API re-exported from ``edgekit``."""

from __future__ import annotations

import subprocess
import sys


def test_public_names_survive_submodule_imports() -> None:
    code = ("import edgekit, edgekit.compression.prune, edgekit.bench.api, edgekit.pipeline\n"
            "assert callable(edgekit.compress) and callable(edgekit.benchmark_models), edgekit.compress\n"
            "assert edgekit.CompressConfig().epochs == 5\n"
            "import sys; assert 'tensorflow' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
