"""Device profiles: every built-in profile loads, bad files give one-line errors, availability is honest."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.errors import ConfigError, UsageError
from edgekit.locations import unavailable_reason
from edgekit.runtime.host import cpu_flags
from edgekit.targets import get_target, load_profile, load_targets

BUILTIN = ("x86-cpu", "x86-avx512-vnni", "nvidia-cuda", "nvidia-tensorrt", "arm64-qemu", "raspberry-pi-5",
           "jetson-orin", "arm64-cpu")


def test_every_builtin_profile_loads() -> None:
    targets = load_targets()
    assert set(BUILTIN) <= set(targets)
    assert targets["arm64-qemu"].emulated and targets["arm64-qemu"].qemu.cpu == "neoverse-n1"
    assert targets["raspberry-pi-5"].ssh.host and targets["jetson-orin"].location == "ssh"
    trt = targets["nvidia-tensorrt"].onnxruntime
    assert trt.providers[0] == "TensorrtExecutionProvider"
    assert trt.provider_options["TensorrtExecutionProvider"]["trt_fp16_enable"] is True


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, needle", [
    ('name = "bad"\nbogus = 1\n', "unknown key 'bogus'"),
    ('name = "bad"\nlocation = "moon"\n', "location"),
    ('name = "bad"\nthreads = [-1]\n', "threads"),
    ('name = "bad"\nlocation = "ssh"\n', "[ssh]"),
    ('name = "bad"\n[onnxruntime]\nproviders = "CPU"\n', "onnxruntime.providers"),
    ('name = "other"\n', "does not match"),
    ('name = "bad\n', "not valid TOML"),
])
def test_bad_profile_is_one_line_error_naming_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, "bad", text)
    with pytest.raises(ConfigError) as e:
        load_profile(path)
    assert needle in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_devices_dir_adds_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "mine", "x86-cpu", 'name = "x86-cpu"\ndescription = "mine"\nthreads = [1]\n')
    _write(tmp_path / "env", "lab-board", 'name = "lab-board"\nlocation = "ssh"\n[ssh]\nhost = "lab"\n')
    monkeypatch.setenv("EDGEKIT_DEVICES_DIR", str(tmp_path / "env"))
    targets = load_targets([tmp_path / "mine"])
    assert targets["x86-cpu"].description == "mine" and "lab-board" in targets
    with pytest.raises(UsageError, match="unknown device profile 'nope'"):
        get_target("nope")
    with pytest.raises(UsageError, match="does not exist"):
        load_targets([tmp_path / "missing"])


def test_availability_is_honest_here() -> None:
    targets = load_targets()
    assert unavailable_reason(targets["x86-cpu"]) is None
    cuda = unavailable_reason(targets["nvidia-cuda"])
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert cuda and "CUDAExecutionProvider not in this onnxruntime build" in cuda
    vnni = unavailable_reason(targets["x86-avx512-vnni"])
    assert (vnni is None) == ("avx512_vnni" in cpu_flags())
    assert "aarch64" in (unavailable_reason(targets["arm64-cpu"]) or "aarch64")
    pi = unavailable_reason(targets["raspberry-pi-5"], probe_remote=False)
    assert pi is None or "ssh key" in pi or "known_hosts" in pi
