"""Locations (where the runner runs) and the runner archive that travels to them."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench.tiny import tiny_data, write_tiny_onnx
from edgekit.errors import TargetError
from edgekit.locations import LOCATIONS, location_for, unavailable_reason
from edgekit.locations.local import LocalLocation
from edgekit.runtime.archive import ARCHIVE_NAME, SHIPPED, runner_archive
from edgekit.targets import LocationKind, Target, get_target


def test_every_profile_location_has_a_class() -> None:
    assert set(LOCATIONS) == set(typing.get_args(LocationKind))
    assert isinstance(location_for(get_target("x86-cpu")), LocalLocation)
    assert location_for(get_target("arm64-qemu")).kind == "qemu"
    with pytest.raises(TargetError, match="unknown location 'moon'"):
        location_for(Target(name="odd", location="moon"))  # type: ignore[arg-type]


def test_local_location_says_why_not() -> None:
    far = Target(name="far", arch="aarch64" if get_target("x86-cpu").arch == "x86_64" else "x86_64")
    assert "needs an" in (unavailable_reason(far) or "")
    assert LocalLocation(get_target("x86-cpu")).setup() == "x86-cpu: nothing to set up"


def test_runner_archive_holds_the_runner_and_its_sessions_only(tmp_path: Path) -> None:
    path = runner_archive(tmp_path)
    assert path.name == ARCHIVE_NAME
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    assert names == {"__main__.py", "edgekit/__init__.py", *(f"edgekit/runtime/{n}" for n in SHIPPED)}
    assert runner_archive(tmp_path).read_bytes() == path.read_bytes()  # same sources, same bytes


def test_runner_archive_runs_in_an_isolated_python(tmp_path: Path) -> None:
    model = write_tiny_onnx(tmp_path / "tiny.onnx")
    x, y = tiny_data(8)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    request = {"model": str(model), "data": str(tmp_path / "data.npz"), "runtime": "onnxruntime",
               "batch_sizes": [2], "threads": [1],
               "timing": {"warmup_runs": 1, "min_runs": 3, "min_seconds": 0.0, "max_seconds": 2.0}}
    (tmp_path / "req.json").write_text(json.dumps(request))
    work = tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run([sys.executable, "-I", str(runner_archive(tmp_path)), str(tmp_path / "req.json"),
                    str(tmp_path / "res.json")], cwd=work, check=True, timeout=300, capture_output=True)
    rows = json.loads((tmp_path / "res.json").read_text())["rows"]
    assert rows and all(r["status"] == "ok" and r["provider"] == "CPUExecutionProvider" for r in rows)
