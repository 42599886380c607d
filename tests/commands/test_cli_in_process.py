"""What :func:`tests.helpers.cli.edgekit_in_process` leaves behind: the command a run records is the one
given to ``edgekit.cli.main`` (not pytest's ``sys.argv``), and pytest's logging still works after the call."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import edgekit_in_process

FAST = ["--min-runs", "5", "--min-seconds", "0.02", "--warmup-runs", "1"]


def _bench_on_a_far_board(tmp_path: Path, out: Path) -> list[str]:
    """bench argv that writes report.json without running anything (the only target cannot run here)."""
    from edgekit.bench.tiny import write_tiny_onnx

    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "far-board.toml").write_text('name = "far-board"\narch = "aarch64"\n')  # never this x86 machine
    model = write_tiny_onnx(tmp_path / "tiny.onnx")
    return ["bench", str(model), "--dataset", "digits", "--test-limit", "20", "--target", "far-board",
            "--devices-dir", str(devices), "--out", str(out), *FAST]


def test_report_records_the_command_given_to_main(tmp_path: Path) -> None:
    out = tmp_path / "run dir"  # a space: the recorded command is shell-quoted
    argv = _bench_on_a_far_board(tmp_path, out)
    result = edgekit_in_process(*argv)
    assert result.returncode == 1, result.stderr  # nothing was benchmarked, but the report is written
    command = json.loads((out / "report.json").read_text())["command"]
    assert command == "edgekit " + shlex.join(argv)
    assert shlex.split(command)[1:] == argv
    assert command != "edgekit " + shlex.join(sys.argv[1:])  # not pytest's command line


def test_pytest_logging_survives_an_in_process_call(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    log_file = tmp_path / "test.log"
    file_handler = logging.FileHandler(log_file, mode="w")  # as pytest's --log-file handler
    root.addHandler(file_handler)
    try:
        before = list(root.handlers)
        closed = [getattr(h, "_closed", False) for h in before]
        result = edgekit_in_process("report", str(tmp_path / "missing-run"))  # sets up the CLI's logging, fails
        assert result.returncode != 0
        assert root.handlers == before  # the same handler objects, back on the root logger
        assert [getattr(h, "_closed", False) for h in before] == closed  # none closed by the call
        assert not file_handler._closed  # type: ignore[attr-defined]
        with caplog.at_level(logging.WARNING, logger="edgekit.tests"):
            logging.getLogger("edgekit.tests").warning("after the call")
        assert [r.getMessage() for r in caplog.records] == ["after the call"]
        file_handler.flush()
        assert "after the call" in log_file.read_text()
    finally:
        root.removeHandler(file_handler)
        file_handler.close()
