"""``edgekit analyze`` refuses bad input before loading anything (fast; the full run is in test_analyze.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.cli import main


def test_missing_model_is_named_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.keras"), "--dataset", "digits", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "nope.keras" in err and err.count("\n") == 1 and not (tmp_path / "a").exists()


def test_existing_analysis_is_not_overwritten_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a"
    out.mkdir()
    (out / "analysis.json").write_text("{}")
    model = tmp_path / "m.keras"
    model.write_bytes(b"not a model")
    assert main(["analyze", str(model), "--dataset", "digits", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "analysis.json").read_text() == "{}"


@pytest.mark.parametrize("flag", [["--sparsities", "0.5,1.2"], ["--structured", "x"], ["--budget", "-1"], ["--calibration-samples", "0"]])
def test_bad_levels_and_budget_exit_2(tmp_path: Path, flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = None
    try:
        code = main(["analyze", str(tmp_path / "m.keras"), "--out", str(tmp_path / "a"), *flag])
    except SystemExit as e:  # argparse rejects a malformed value itself
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and flag[0] in err and err.count("\n") == 1 and not (tmp_path / "a").exists()
