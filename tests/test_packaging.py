"""Packaging: the wheel alone carries everything the code reads (device profiles), and runs outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import edgekit.targets as targets_mod
from edgekit.errors import ConfigError
from edgekit.targets import builtin_devices_dir, default_target_name, load_targets

ROOT = Path(__file__).resolve().parent.parent
WHEEL_DIR_ENV = "EDGEKIT_TEST_WHEEL_DIR"  # .ci/run builds the wheel the way users do and names its folder here


def _listed_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_is_listed_in_pyproject() -> None:
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "edgekit").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    missing = sorted(found - _listed_packages())
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml (or the wheel lacks them)"
    assert "edgekit.devices" in _listed_packages()


def test_report_templates_are_package_data() -> None:
    """report.html is rendered from templates: each one must match a package-data pattern, or the wheel lacks it."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    folder = ROOT / "edgekit" / "report"
    files = sorted(p.relative_to(folder) for p in (folder / "templates").iterdir())
    assert any(f.suffix == ".j2" for f in files)
    missing = [str(f) for f in files if not any(f.match(pat) for pat in patterns["edgekit.report"])]
    assert not missing, f"add {missing} to [tool.setuptools.package-data] in pyproject.toml"


def test_wheel_carries_the_report_templates(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(tmp_path)).namelist())
    templates = {f"edgekit/report/templates/{p.name}" for p in (ROOT / "edgekit" / "report" / "templates").iterdir()}
    assert templates and templates <= names, sorted(templates - names)


def test_builtin_profiles_come_from_the_package() -> None:
    folder = builtin_devices_dir()
    assert (folder / "x86-cpu.toml").is_file() and "x86-cpu" in load_targets()


def test_missing_builtin_profiles_are_an_error_not_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets_mod, "BUILTIN_PACKAGE", "edgekit.no_such_devices")
    with pytest.raises(ConfigError, match="not installed"):
        load_targets()


def _wheel(tmp: Path) -> Path:
    prebuilt = os.environ.get(WHEEL_DIR_ENV)
    folder = Path(prebuilt) if prebuilt else tmp / "dist"
    if not prebuilt:  # offline: the installed setuptools builds it, from a copy (a stale ./build would leak into it)
        src = tmp / "src"
        for name in ("pyproject.toml", "README.md"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
        for name in ("edgekit", "devices"):
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(folder), str(src)], check=True, timeout=600)
    wheels = sorted(folder.glob("edgekit-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_install_runs_outside_the_repo(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Reuse this interpreter's TensorFlow & co. as a plain path entry: unlike --system-site-packages, this does not
    # run the .pth files there, so an editable install of edgekit cannot shadow the wheel's copy.
    (site / "_host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGEKIT_DEVICES_DIR")}

    def edgekit(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        proc = subprocess.run([str(venv / "bin" / "edgekit"), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode in ok and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        return proc.stdout

    where = subprocess.run([str(py), "-c", "import edgekit; print(edgekit.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    here = default_target_name()  # x86-cpu on CI
    assert "x86-cpu" in edgekit("devices", "--no-probe")
    assert f"{here}: ok" in edgekit("devices", "check", here)  # the runner archive, built from the wheel's files
    out = work / "run"
    # exit 1 is allowed: a model trained for one epoch on 300 images may miss the int8 agreement floor
    edgekit("compress", "--dataset", "digits", "--epochs", "1", "--train-limit", "300", "--test-limit", "100",
            "--no-bench", "--sparsity", "0", "--out", str(out), ok=(0, 1))
    report = json.loads((out / "report.json").read_text())
    assert "<h1>edgekit report" in (out / "report.html").read_text()  # rendered from the wheel's templates
    assert {"keras", "tflite", "onnx"} <= {a["format"] for a in report["artifacts"]}
