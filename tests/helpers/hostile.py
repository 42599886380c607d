"""Hostile model files made by a script in a child process (building or saving a model may run its code,
which touches the marker): the script gets the output folder and the marker path as argv[1] and argv[2]."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def make_hostile_models(script: str, out: Path, keras3: bool = False) -> tuple[Path, Path]:
    """Run ``script`` (with tf_keras, or plain Keras 3 with ``keras3``) to write its files into ``out``;
    returns (out, marker), the marker removed."""
    marker = out / "MARKER"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0" if keras3 else "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, "-c", script, str(out), str(marker)], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    marker.unlink(missing_ok=True)
    return out, marker
