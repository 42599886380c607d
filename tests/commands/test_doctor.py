"""``edgekit doctor`` and the one-message list of missing system packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgekit.commands import doctor
from edgekit.sysreqs import missing_message


def test_doctor_runs_without_tensorflow() -> None:
    code = ("import sys; from edgekit.commands.doctor import run_checks; cs = run_checks(); "
            "print('tensorflow' in sys.modules, sorted({c.status for c in cs}), [c.name for c in cs])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.startswith("False ")
    for name in ("tensorflow", "tf-keras", "TF_USE_LEGACY_KERAS", "CPUExecutionProvider", "qemu", "ARM64 sysroot", "chromium"):
        assert f"'{name}'" in out


def test_doctor_cli_prints_what_to_fix() -> None:
    r = subprocess.run([sys.executable, "-m", "edgekit", "doctor"], capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1) and "CPUExecutionProvider" in r.stdout
    assert "To fix:" in r.stdout or "Nothing to fix." in r.stdout


def test_mismatched_tf_keras_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"tensorflow": "2.21.0", "tf-keras": "2.20.1"}
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda d: versions.get(d) or real(d))
    checks = {c.name: c for c in doctor.check_versions()}
    assert checks["tf-keras"].status == doctor.FAIL and "2.20.1" in checks["tf-keras"].detail
    assert checks["tensorflow/tf-keras"].status == doctor.FAIL and "tf-keras==2.21.*" in checks["tensorflow/tf-keras"].fix


def test_missing_package_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda d: None if d == "tf2onnx" else real(d))
    check = {c.name: c for c in doctor.check_versions()}["tf2onnx"]
    assert check.status == doctor.FAIL and check.fix.startswith("pip install 'tf2onnx")


@pytest.mark.parametrize(("value", "status"), [("0", doctor.FAIL), ("1", doctor.OK), ("", doctor.OK)])
def test_legacy_keras_flag(monkeypatch: pytest.MonkeyPatch, value: str, status: str) -> None:
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", value)
    assert doctor.check_legacy_keras().status == status


def test_all_missing_packages_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    msg = missing_message("arm64-qemu", "qemu-aarch64-static", "debootstrap", "qemu-aarch64-static")
    assert msg == "arm64-qemu: missing qemu-user-static, debootstrap (Debian: apt-get install qemu-user-static debootstrap)"
    checks = {c.name: c for c in doctor.check_system()}
    assert "qemu-user-static debootstrap" in checks["qemu"].fix and checks["chromium"].status == doctor.WARN


def test_no_gpu_libraries_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda d: "1.32.0" if d == "onnxruntime-gpu" else real(d))
    monkeypatch.setattr(doctor, "_loads", lambda names: None)
    checks = {c.name: c for c in doctor.check_gpu_libs()}
    assert checks["cuDNN"].status == doctor.FAIL and "cudnn" in checks["cuDNN"].fix
    assert checks["TensorRT"].status == doctor.WARN


def test_devices_setup_names_every_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """`edgekit devices setup arm64-qemu` used to name one missing package per attempt."""
    from edgekit.errors import TargetError
    from edgekit.locations.qemu import setup_arm64_sysroot
    from edgekit.targets import get_target

    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(TargetError) as e:
        setup_arm64_sysroot(get_target("arm64-qemu"))
    assert "apt-get install qemu-user-static debootstrap" in str(e.value)


def test_cache_check(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "c"))
    assert doctor.check_cache().status == doctor.OK
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "file" / "c"))
    check = doctor.check_cache()
    assert check.status == doctor.FAIL and "EDGEKIT_CACHE_DIR" in check.fix
