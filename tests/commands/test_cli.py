"""The command line: fast help, and bad input → one line on stderr, exit 2, nothing written.

Most cases run the command line in this process (:func:`tests.helpers.cli.edgekit_in_process`); what
only a process shows (no TensorFlow imported, the real entry point) runs ``python -m edgekit``, and
:func:`test_in_process_gives_what_a_process_gives` holds the two ways to the same output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import edgekit_in_process, edgekit_subprocess


def edgekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return edgekit_in_process(*args, cwd=cwd)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_help_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = ("import sys, edgekit.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "compress" in r.stdout
    assert time.perf_counter() - t0 < 5.0


def test_compress_help_lists_the_flags(tmp_path: Path) -> None:
    r = edgekit("compress", "--help", cwd=tmp_path)
    for flag in ("--dataset", "--data-dir", "--epochs", "--batch-size", "--train-limit", "--test-limit", "--sparsity",
                 "--out", "--force", "--seed"):
        assert flag in r.stdout


def test_version(tmp_path: Path) -> None:
    r = edgekit("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("edgekit ")


@pytest.mark.parametrize("args", [
    ["--version"],
    [],
    ["compress", "--dataset", "digits", "--learning-rate", "nan"],
    ["devices", "lst"],
    ["--debug", "inspect", "nothing.onnx"],
])
def test_in_process_gives_what_a_process_gives(tmp_path: Path, args: list[str]) -> None:
    """The in-process runner the CLI suites use gives the exit code, stdout and stderr of ``python -m edgekit``,
    and leaves the working folder, environment, logging and signal handlers as they were."""
    import logging
    import signal

    before = (os.getcwd(), dict(os.environ), list(logging.getLogger().handlers), logging.getLogger().level,
              signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    env = {**os.environ, "EDGEKIT_MARKER_VAR": "1"}
    inside = edgekit_in_process(*args, cwd=tmp_path, env=env)
    after = (os.getcwd(), dict(os.environ), list(logging.getLogger().handlers), logging.getLogger().level,
             signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    child = edgekit_subprocess(*args, cwd=tmp_path, env=env)
    assert (inside.returncode, inside.stdout) == (child.returncode, child.stdout)
    # a traceback names this process's frames (the runner, pytest) above main(); the rest is the same
    assert inside.stderr.splitlines()[-1:] == child.stderr.splitlines()[-1:], (inside.stderr, child.stderr)
    assert ("Traceback" in inside.stderr) == ("Traceback" in child.stderr)
    if "Traceback" not in child.stderr:
        assert inside.stderr == child.stderr
    assert after == before


def _bad_data_dirs(root: Path) -> dict[str, Path]:
    from tests.data.test_datasets import idx_bytes, write_idx_dir

    magic = write_idx_dir(root / "magic", gz=False)
    (magic / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78" + b"\0" * 100)
    trunc = write_idx_dir(root / "trunc", gz=False)
    (trunc / "t10k-images-idx3-ubyte").write_bytes((trunc / "t10k-images-idx3-ubyte").read_bytes()[:-10])
    count = write_idx_dir(root / "count", gz=False)
    (count / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(7)))
    empty = root / "empty"
    empty.mkdir()
    return {"magic": magic, "trunc": trunc, "count": count, "empty": empty}


@pytest.mark.parametrize("case, args, expected", [
    ("dataset", ["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    ("sparsity-high", ["--sparsity", "1.0"], "--sparsity must be in [0, 1)"),
    ("sparsity-neg", ["--sparsity", "-0.1"], "--sparsity must be in [0, 1)"),
    ("epochs", ["--epochs", "0"], "--epochs must be at least 1"),
    ("missing-dir", ["--data-dir", "does-not-exist"], "does-not-exist"),
    ("magic", ["--data-dir", "{magic}"], "wrong magic number"),
    ("trunc", ["--data-dir", "{trunc}"], "truncated"),
    ("count", ["--data-dir", "{count}"], "but 7 labels"),
    ("empty", ["--data-dir", "{empty}"], "no IDX files"),
    ("exists", ["--out", "{existing}"], "already exists"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path: Path, case: str, args: list[str], expected: str) -> None:
    dirs = _bad_data_dirs(tmp_path / "data")
    existing = tmp_path / "work" / "existing"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("user data")
    args = [a.format(existing=existing, **dirs) for a in args]
    before = snapshot(tmp_path)
    r = edgekit("compress", *args, "--epochs" if "--epochs" not in args else "--seed", "1" if "--epochs" not in args else "0",
                cwd=tmp_path / "work")
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("edgekit: error:") and expected in lines[0]
    assert "Traceback" not in r.stderr
    assert snapshot(tmp_path) == before  # nothing written or changed
    assert not (tmp_path / "work" / "runs").exists()


def test_bad_recipe_key_is_named_exit_2(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sparsity: 0.5\nquantisation: [ptq-int8]\n")
    r = edgekit("compress", "--recipe", str(recipe), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown key 'quantisation'" in r.stderr and str(recipe) in r.stderr


def test_unknown_target_is_named_exit_2(tmp_path: Path) -> None:
    r = edgekit("compress", "--targets", "x86-cpu,pi-zero", cwd=tmp_path)
    assert r.returncode == 2 and "unknown device profile 'pi-zero'" in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, expected", [
    (["--quantization", "bogus"], "did you mean ptq-int8?"),
    (["--quantization", "ptq-int9"], "did you mean ptq-int8?"),
    (["--seed", "-1"], "--seed must be in [0, 4294967295], got -1"),
    (["--qat-epochs", "-3"], "--qat-epochs must be at least 1, got -3"),
    (["--image-size", "0"], "--image-size must be at least 1, got 0"),
    (["--per-layer-sparsity", "conv1=5.0"], "--per-layer-sparsity.conv1 must be in [0, 1), got 5.0"),
    (["--recipe", "{per_layer}"], "per-layer-sparsity.conv1 must be in [0, 1), got 5.0"),
    (["--prune-schedule", "bogus"], "--prune-schedule: 'bogus' is not one of polynomial, constant"),
    (["--learning-rate", "nan"], "--learning-rate must be finite"),
    (["--learning-rate", "-0.001"], "--learning-rate must be in (0, 1)"),
    (["--max-accuracy-drop", "nan"], "--max-accuracy-drop must be finite"),
    (["--bench-min-seconds", "inf"], "--bench-min-seconds must be finite"),
    (["--bench-min-seconds", "nan"], "--bench-min-seconds must be finite"),
    (["--mac-budget", "5"], "--mac-budget must be in [0, 1], got 5.0"),
    (["--structured-criterion", "bogus"], "--structured-criterion: 'bogus' is not one of l1, l2, bn_scale"),
    (["--calibration", "bogus"], "--calibration: 'bogus' is not one of minmax, entropy, percentile"),
    (["--recipe", "{calibration}"], "calibration.yaml.calibration: 'bogus' is not one of"),
    (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
])
def test_bad_flag_values_one_line_exit_2_nothing_written(tmp_path: Path, args: list[str], expected: str) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "per_layer.yaml").write_text("per_layer_sparsity: {conv1: 5.0}\n")
    (recipes / "calibration.yaml").write_text("calibration: bogus\n")
    work = tmp_path / "work"
    work.mkdir()
    args = [a.format(per_layer=recipes / "per_layer.yaml", calibration=recipes / "calibration.yaml") for a in args]
    before = snapshot(tmp_path)
    r = edgekit("compress", "--dataset", "digits", *args, cwd=work)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgekit: error:") and expected in lines[0], r.stderr
    assert snapshot(tmp_path) == before and not (work / "runs").exists()


def test_compress_help_groups_flags_and_ends_with_examples(tmp_path: Path) -> None:
    r = edgekit("compress", "--help", cwd=tmp_path)
    assert r.returncode == 0
    for group in ("data:", "training:", "pruning:", "quantization:", "search:", "targets and benchmark:", "output:"):
        assert f"\n{group}\n" in r.stdout, group
    tail = r.stdout[r.stdout.index("\nexamples:\n"):]
    assert 3 <= tail.count("\n  edgekit compress ") <= 5
    assert "ptq-int8" in r.stdout and "pqat" in r.stdout  # the registered modes, with what they do


def test_every_command_help_ends_with_examples() -> None:
    from edgekit.cli import COMMANDS, build_parser

    subcommands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in COMMANDS:
        text = subcommands[command].format_help()
        assert "\nexamples:\n" in text and 3 <= text.count(f"\n  edgekit {command}") <= 5, command


def test_a_mistyped_choice_suggests_the_closest(tmp_path: Path) -> None:
    r = edgekit("devices", "lst", cwd=tmp_path)
    assert r.returncode == 2 and "did you mean list?" in r.stderr
    r = edgekit("compres", cwd=tmp_path)
    assert r.returncode == 2 and "did you mean compress?" in r.stderr
