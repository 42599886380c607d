"""The peers' own virtual environment (NNCF and LiteRT Quantizer do not install beside edgekit's pins).

Made once by :func:`ensure_venv` under ``runs/.venv-peers`` (``runs/`` is git-ignored) and reused;
``benchmarks/peers.py`` runs the peer quantizers there in a subprocess and brings back their files.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "runs" / ".venv-peers"
PEER_PINS = ("nncf==3.4.0", "litert-quantizer==0.11.0", "onnx>=1.23,<1.24", "onnxruntime>=1.32,<1.33")
"""What the peers' venv holds: NNCF (ONNX backend needs onnx + onnxruntime) and Google's LiteRT Quantizer."""
STAMP = VENV / ".edgekit-peers-ok"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Create the peers' venv the first time (one ``pip install``); later calls reuse it. Returns its python."""
    if STAMP.exists() and STAMP.read_text().strip() == " ".join(PEER_PINS):
        return venv_python()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if not venv_python().exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    subprocess.run([str(venv_python()), "-m", "pip", "install", "--quiet", *PEER_PINS], check=True)
    STAMP.write_text(" ".join(PEER_PINS) + "\n")
    return venv_python()


if __name__ == "__main__":
    print(ensure_venv())
    sys.exit(0)
