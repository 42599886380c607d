"""Hostile device profiles: every field is checked when the profile is loaded, and a bad one is one line
(exit 2) naming the file and the key; nothing from a profile reaches make or a shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgekit.errors import ConfigError
from edgekit.targets import load_profile
from tests.helpers.cli import edgekit_in_process

MCU = """name = "{name}"
location = "tflm"
runtimes = []
threads = [1]
batch_sizes = [1]
[mcu]
ram_kb = 64
flash_kb = 512
cpu = "cortex-m4"
"""
SSH = """name = "{name}"
location = "ssh"
[ssh]
host = "board.local"
"""


def _profile(folder: Path, base: str, old: str, new: str, name: str = "evil") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = base.format(name=name)
    assert old in text
    path = folder / f"{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(("base", "old", "new", "key"), [
    (MCU, 'cpu = "cortex-m4"', 'cpu = "cortex-m4 $(shell touch MARKER)"', "mcu.cpu"),
    (MCU, 'cpu = "cortex-m4"', 'cpu = "-n"', "mcu.cpu"),
    (MCU, 'cpu = "cortex-m4"', "cpu = \"cortex-m4'; touch MARKER; '\"", "mcu.cpu"),
    (MCU, "ram_kb = 64", "ram_kb = 0", "mcu.ram_kb"),
    (MCU, "flash_kb = 512", "flash_kb = -1", "mcu.flash_kb"),
    (MCU, "ram_kb = 64", "ram_kb = 99999999999", "mcu.ram_kb"),
    (MCU, "threads = [1]", "threads = [1, 100000]", "threads[1]"),
    (MCU, "batch_sizes = [1]", "batch_sizes = [0]", "batch_sizes[0]"),
    (MCU, "batch_sizes = [1]", "batch_sizes = [1000000000]", "batch_sizes[0]"),
    (SSH, 'host = "board.local"', 'host = "board.local"\nport = 0', "ssh.port"),
    (SSH, 'host = "board.local"', 'host = "board.local"\nport = 70000', "ssh.port"),
    (SSH, 'host = "board.local"', 'host = "-oProxyCommand=touch MARKER"', "ssh.host"),
    (SSH, 'host = "board.local"', 'host = "board.local"\nuser = "-l"', "ssh.user"),
    (SSH, 'host = "board.local"', 'host = "board.local"\ntimeout_s = 0', "ssh.timeout_s"),
])
def test_bad_field_is_refused_naming_the_key(tmp_path: Path, base: str, old: str, new: str, key: str) -> None:
    path = _profile(tmp_path / "d", base, old, new)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}.{key}") and "\n" not in message, message


def test_sane_profile_loads(tmp_path: Path) -> None:
    target = load_profile(_profile(tmp_path / "d", MCU, "ram_kb = 64", "ram_kb = 64"))
    assert target.mcu is not None and target.mcu.cpu == "cortex-m4"


@pytest.mark.parametrize("via", ["flag", "env"])
def test_compress_refuses_a_shell_in_the_mcu_cpu_up_front(tmp_path: Path, via: str) -> None:
    """The profile is refused when loaded: before data, training, and the firmware build that ran make."""
    folder = tmp_path / "devices"
    _profile(folder, MCU, 'cpu = "cortex-m4"', 'cpu = "cortex-m4 $(shell touch MARKER)"')
    args = ["compress", "--dataset", "digits", "--epochs", "1", "--train-limit", "100", "--targets", "evil",
            "--out", str(tmp_path / "run")]
    env = dict(os.environ)
    if via == "flag":
        args += ["--devices-dir", str(folder)]
    else:
        env["EDGEKIT_DEVICES_DIR"] = str(folder)
    done = edgekit_in_process(*args, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "evil.toml.mcu.cpu must match" in lines[0], done.stderr
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "run").exists()
