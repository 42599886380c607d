"""Comparing two runs, and the `edgekit report` command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.report.compare import compare_reports, render_compare_html, render_compare_markdown
from edgekit.report.model import DatasetInfo, Environment, Latency, Report
from edgekit.report.write import write_reports
from tests.helpers.report_records import X86, sample_report


@pytest.fixture()
def pair() -> tuple[Report, Report]:
    a = sample_report()
    int8 = next(x for x in a.artifacts if x.id == "tfl8")
    new8 = dataclasses.replace(int8, id="ffff00001111", accuracy=0.9601, bytes=100_000,
                               config={**int8.config, "calibration_samples": 500})
    rows = []
    for r in a.benchmarks:
        if r.artifact_id == "onnx8":
            continue
        if r.artifact_id == "tfl8":
            r = dataclasses.replace(r, artifact_id=new8.id)
            if r.target == X86 and r.batch_size == 1 and r.threads == 1:
                r = dataclasses.replace(r, latency_ms=Latency(p50=0.030))
        rows.append(r)
    b = dataclasses.replace(
        a, seed=1, artifacts=tuple(new8 if x.id == "tfl8" else x for x in a.artifacts if x.id != "onnx8"),
        benchmarks=tuple(rows), regressions=(), warnings=(), chosen_id=new8.id, search=None,
        dataset=DatasetInfo(raw={**a.dataset.raw, "train_size": 1000}),
        environment=Environment({**a.environment.values, "onnxruntime": "1.33.0"}))
    return a, b


def test_compare_matches_artifacts_by_stage_format_precision_name(pair: tuple[Report, Report]) -> None:
    a, b = pair
    diff = compare_reports(a, b)
    assert {d["key"]: (d["a"], d["b"]) for d in diff["settings"]} == {"seed": (0, 1)}
    assert [d["key"] for d in diff["dataset"]] == ["train_size"]
    assert [d["key"] for d in diff["environment"]] == ["onnxruntime"]
    m = next(x for x in diff["artifacts"] if x["label"] == "tfl8.tflite")
    assert m["id_a"] != m["id_b"]  # matched although the id changed
    assert m["delta_accuracy_pp"] == pytest.approx(0.71)
    assert m["delta_bytes"] == 100_000 - 130 * 1024
    assert [c["key"] for c in m["config"]] == ["calibration_samples"]
    cell = next(c for c in m["latency"] if c["target"] == X86 and c["batch_size"] == 1 and c["threads"] == 1)
    assert cell["delta_ms"] == pytest.approx(0.030 - 0.074)
    assert diff["only_in_a"] == ["onnx8.onnx (quantize.ptq_int8)"] and diff["only_in_b"] == []
    json.dumps(diff)  # JSON-ready


def test_compare_renders_markdown_and_html(pair: tuple[Report, Report]) -> None:
    diff = compare_reports(*pair)
    md = render_compare_markdown(diff)
    assert "| seed | 0 | 1 |" in md and "+0.71" in md and "onnx8.onnx" in md
    page = render_compare_html(diff)
    assert '<table class="sortable">' in page and "http" not in page.split("<body>")[1]


def test_identical_runs_have_no_differences(pair: tuple[Report, Report]) -> None:
    a, _ = pair
    diff = compare_reports(a, a.to_dict())  # typed or the report.json dict
    assert diff["settings"] == diff["dataset"] == diff["environment"] == []
    assert diff["only_in_a"] == diff["only_in_b"] == []
    assert all(m["delta_accuracy_pp"] == 0 for m in diff["artifacts"])


def test_report_command_regenerates_without_touching_report_json(tmp_path: Path) -> None:
    write_reports(tmp_path, sample_report())
    (tmp_path / "report.html").unlink()
    before = (tmp_path / "report.json").read_bytes()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.json").read_bytes() == before
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_command_compares_two_runs(pair: tuple[Report, Report], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for name, rep in zip("ab", pair):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(rep.to_dict()))
    out = tmp_path / "cmp"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    assert "| seed | 0 | 1 |" in capsys.readouterr().out
    assert (out / "compare.md").exists() and (out / "compare.html").exists()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2  # no --force
    assert "exists" in capsys.readouterr().err


def test_compare_refuses_a_malformed_run(pair: tuple[Report, Report], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.json").write_text(json.dumps(pair[0].to_dict()))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "report.json").write_text(json.dumps({"artifacts": [{"id": "x", "format": 3}]}))
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "artifacts[0].format: expected a string, got 3" in err
