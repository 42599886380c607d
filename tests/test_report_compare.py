"""Comparing two runs, and the `edgekit report` command."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgekit.cli import main
from edgekit.report.compare import compare_reports, render_compare_html, render_compare_markdown

FIXTURE = Path(__file__).parent / "fixtures" / "report_sample.json"


@pytest.fixture()
def pair() -> tuple[dict[str, Any], dict[str, Any]]:
    a = json.loads(FIXTURE.read_text())
    b = copy.deepcopy(a)
    b["seed"] = 1
    b["dataset"]["train_size"] = 1000
    b["environment"]["onnxruntime"] = "1.33.0"
    int8 = next(x for x in b["artifacts"] if x["id"] == "e2b74d1c0f95")
    int8.update(id="ffff00001111", accuracy=0.9601, bytes=100_000, config={**int8["config"], "calibration_samples": 500})
    for row in b["benchmarks"]:
        if row["artifact_id"] == "e2b74d1c0f95":
            row["artifact_id"] = "ffff00001111"
            if row["target"] == "x86-cpu" and row["batch_size"] == 1 and row["threads"] == 1:
                row["latency_ms"]["p50"] = 0.030
    b["artifacts"] = [x for x in b["artifacts"] if x["id"] != "3d58a0f6c7b2"]
    b["benchmarks"] = [x for x in b["benchmarks"] if x["artifact_id"] != "3d58a0f6c7b2"]
    return a, b


def test_compare_matches_artifacts_by_stage_format_precision_name(pair: Any) -> None:
    a, b = pair
    diff = compare_reports(a, b)
    assert {d["key"]: (d["a"], d["b"]) for d in diff["settings"]} == {"seed": (0, 1)}
    assert [d["key"] for d in diff["dataset"]] == ["train_size"]
    assert [d["key"] for d in diff["environment"]] == ["onnxruntime"]
    m = next(x for x in diff["artifacts"] if x["label"] == "pruned-int8.tflite")
    assert m["id_a"] != m["id_b"]  # matched although the id changed
    assert m["delta_accuracy_pp"] == pytest.approx(0.29)
    assert m["delta_bytes"] == 100_000 - 110_872
    assert [c["key"] for c in m["config"]] == ["calibration_samples"]
    cell = next(c for c in m["latency"] if c["target"] == "x86-cpu" and c["batch_size"] == 1 and c["threads"] == 1)
    assert cell["delta_ms"] == pytest.approx(0.030 - 0.041)
    assert diff["only_in_a"] == ["pruned-int8.onnx (quantize.ptq_int8)"] and diff["only_in_b"] == []
    json.dumps(diff)  # JSON-ready


def test_compare_renders_markdown_and_html(pair: Any) -> None:
    diff = compare_reports(*pair)
    md = render_compare_markdown(diff)
    assert "| seed | 0 | 1 |" in md and "+0.29" in md and "pruned-int8.onnx" in md
    page = render_compare_html(diff)
    assert "<table>" in page and "http" not in page.split("<body>")[1]


def test_identical_runs_have_no_differences(pair: Any) -> None:
    a, _ = pair
    diff = compare_reports(a, a)
    assert diff["settings"] == diff["dataset"] == diff["environment"] == []
    assert diff["only_in_a"] == diff["only_in_b"] == []
    assert all(m["delta_accuracy_pp"] == 0 for m in diff["artifacts"])


def test_report_command_regenerates_without_touching_report_json(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "report.json")
    before = (tmp_path / "report.json").read_bytes()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.json").read_bytes() == before
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_command_compares_two_runs(pair: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, rep in zip("ab", pair):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(rep))
    out = tmp_path / "cmp"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    assert "| seed | 0 | 1 |" in capsys.readouterr().out
    assert (out / "compare.md").exists() and (out / "compare.html").exists()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2  # no --force
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_bad_report_json_is_one_line_exit_2(tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "report.json") in err
    assert not (tmp_path / "report.html").exists()
