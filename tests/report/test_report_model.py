"""The typed report: records built in code, to_dict/from_dict, and one-line errors for a malformed report.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgekit.errors import ReportError, UsageError
from edgekit.report.model import ArtifactRecord, BenchRow, Report
from edgekit.report.sections import Analysis, Tune
from tests.helpers.report_records import analysis, sample_report, tune


def test_round_trip_keeps_every_field() -> None:
    report = sample_report(analysis=analysis(), tune=tune())
    data = json.loads(json.dumps(report.to_dict()))  # JSON-ready
    again = Report.from_dict(data)
    assert again.to_dict() == data
    assert again.artifacts == report.artifacts and again.benchmarks == report.benchmarks
    assert again.analysis == report.analysis and again.tune == report.tune
    assert again.regressions == report.regressions and again.warnings == report.warnings


def test_to_dict_writes_back_the_keys_it_read() -> None:
    data = sample_report().to_dict()
    assert "analysis" not in data and "tune" not in data  # absent sections stay absent
    minimal = {"artifacts": [{"id": "a", "format": "tflite", "precision": "int8"}], "status": "ok"}
    assert set(Report.from_dict(minimal).to_dict()) == {"artifacts", "status"}


def test_unknown_keys_are_kept() -> None:
    data = sample_report().to_dict()
    data["artifacts"][0]["future_field"] = 1
    data["benchmarks"][0]["runtime_version"] = "ai-edge-litert 2.3.0"
    data["benchmarks"][0]["latency_ms"]["p999"] = 0.2
    data["targets"][0]["memory_gb"] = 16
    data["regressions"][0]["pp"] = 1.0
    data["artifacts"][1]["verification"]["max_rel_diff"] = 1e-6
    data["something_new"] = {"x": 1}
    assert Report.from_dict(data).to_dict() == data


def test_lookups() -> None:
    report = sample_report()
    assert report.baseline is not None and report.baseline.id == "base"
    assert report.chosen is not None and report.chosen.label == "tfl8.tflite"
    assert [r.target for r in report.rows_for("tfl8")] == ["x86-cpu", "x86-cpu", "arm64-qemu"]
    assert report.target_names() == ["x86-cpu", "arm64-qemu", "nvidia-cuda"]
    assert [g.kind for g in report.regressions_of("tfl8")] == ["slower", "less_accurate"]  # on x86; on ARM


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    data = sample_report(analysis=analysis(), tune=tune()).to_dict()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize("path,value,field", [
    (["artifacts", 2, "bytes"], "big", "artifacts[2].bytes: expected an integer, got 'big'"),
    (["artifacts", 1, "accuracy"], 1.5, "artifacts[1].accuracy: expected a fraction in [0, 1]"),
    (["artifacts", 0, "id"], KeyError, "artifacts[0].id: missing"),
    (["artifacts"], {"a": 1}, "artifacts: expected a list"),
    (["benchmarks", 3, "latency_ms", "p50"], "fast", "benchmarks[3].latency_ms.p50: expected a number"),
    (["benchmarks", 0, "artifact_id"], "nope", "benchmarks[0].artifact_id: no artifact has id 'nope'"),
    (["benchmarks", 0, "emulated"], "no", "benchmarks[0].emulated: expected true or false"),
    (["chosen_id"], "zzz", "chosen_id: no artifact has id 'zzz'"),
    (["status"], "great", "status: expected ok or failed"),
    (["problems"], [1], "problems[0]: expected a string"),
    (["regressions", 0, "kind"], "worse", "regressions[0].kind: 'worse' is not one of larger, slower, less_accurate"),
    (["search", "candidates", 0, "bytes"], None, "search.candidates[0].bytes: missing"),
    (["analysis", "layers", 0, "prune"], {"half": 1.0}, "analysis.layers[0].prune.half: expected a fraction"),
    (["tune", "trials", 1, "history", 0], "x", "tune.trials[1].history[0]: expected a number"),
])
def test_malformed_field_is_named_in_one_line(path: list[Any], value: Any, field: str) -> None:
    with pytest.raises(ReportError) as e:
        Report.from_dict(_broken(path, value), "runs/x/report.json")
    msg = str(e.value)
    assert msg.startswith("runs/x/report.json: ") and field in msg and "\n" not in msg
    assert isinstance(e.value, UsageError) and e.value.exit_code == 2


def test_not_an_object() -> None:
    with pytest.raises(ReportError, match=r"^r.json: top level: expected an object, got \[1, 2\]$"):
        Report.from_dict([1, 2], "r.json")


def test_coerce_accepts_the_dict_build_report_makes() -> None:
    report = sample_report()
    assert Report.coerce(report) is report
    assert Report.coerce(report.to_dict()) == Report.from_dict(report.to_dict(), "report")


def test_records_parse_on_their_own() -> None:
    a = ArtifactRecord.from_dict({"id": "x", "format": "onnx", "precision": "int8", "bytes": 10})
    assert a.label == "x.onnx" and a.bytes == 10 and a.audit is None
    b = BenchRow.from_dict({"artifact_id": "x", "target": "t", "status": "ok", "latency_ms": {"p50": 0.5}})
    assert b.p50 == 0.5 and b.ok


def test_analysis_orders_guilty_layers_first() -> None:
    a = Analysis.from_dict(analysis().to_dict())
    assert [s.name for s in a.guilty_first()] == ["conv1", "dense1"]
    assert a.layers[0].worst_drop_pp == pytest.approx(2.5) and a.layers[0].protected


def test_tune_trial_ids_may_be_integers() -> None:
    t = Tune.from_dict({"trials": [{"id": 3, "history": [0.5, 0.6]}], "executor": {"kind": "ray", "nodes": 2}})
    assert t.trials[0].id == "3" and t.trials[0].history == (0.5, 0.6)
    assert t.executor is not None and t.executor.kind == "ray" and t.executor.nodes == 2


def test_numpy_scalars_of_an_in_memory_report_are_accepted() -> None:
    import numpy as np

    b = BenchRow.from_dict({"artifact_id": "x", "target": "t", "status": "ok", "runs": np.int64(3),
                            "accuracy": np.float32(0.5), "node_share": {"CPU": np.float64(1.0)}})
    assert b.runs == 3 and type(b.runs) is int and b.accuracy == 0.5 and b.node_share == {"CPU": 1.0}
    with pytest.raises(ReportError, match=r"node_share\.CPU: expected a number, got 'all'"):
        BenchRow.from_dict({"artifact_id": "x", "target": "t", "status": "ok", "node_share": {"CPU": "all"}})


def test_bench_row_fields_are_declared_once_on_the_record() -> None:
    from edgekit.bench.api import MEASURED, ROW_FIELDS
    from edgekit.bench.peak import PEAK_FIELDS

    assert ROW_FIELDS[:3] == ("artifact_id", "runtime", "target") and ROW_FIELDS[-2:] == ("started", "finished")
    assert BenchRow.keys() == (*ROW_FIELDS, "mcu", *PEAK_FIELDS)
    assert PEAK_FIELDS == ("macs_per_image", "peak_kernel", "peak_gmacs", "percent_of_peak", "peak_reason")
    assert set(MEASURED) < set(ROW_FIELDS) and "latency_ms" in MEASURED and "peak_rss_mb" not in MEASURED
    row = {k: None for k in ROW_FIELDS} | {"artifact_id": "x", "target": "t", "status": "ok", "emulated": False,
                                           "reason": "", "started": "2026-01-01T00:00:00.000+00:00"}
    row["finished"] = row["started"]
    assert list(BenchRow.from_dict(row).to_dict()) == list(ROW_FIELDS)  # a runner's row writes back in order
    peak = row | {"macs_per_image": 10, "peak_kernel": "fp32", "peak_gmacs": 5.0, "percent_of_peak": 1.0}
    assert list(BenchRow.from_dict(peak).to_dict()) == [*ROW_FIELDS, *PEAK_FIELDS[:-1]]  # an empty reason: unwritten


def test_every_record_writes_the_keys_it_declares() -> None:
    """to_dict and reading walk the same declarations: each record's keys are its fields' names, in order."""
    report = sample_report(analysis=analysis(), tune=tune())
    data = report.to_dict()
    assert list(data) == [k for k in Report.keys() if k in data]
    assert list(data["artifacts"][0]) == [k for k in ArtifactRecord.keys() if k in data["artifacts"][0]]
    assert set(Report.keys()) >= set(data) and "present" not in Report.keys() and "extra" not in Report.keys()


def test_a_started_time_must_be_a_string() -> None:
    with pytest.raises(ReportError, match=r"^row: started: expected a string, got 5$"):
        BenchRow.from_dict({"artifact_id": "x", "target": "t", "status": "ok", "started": 5}, "row")


def test_keys_a_report_may_leave_out_stay_optional() -> None:
    """A search candidate's name/format/precision and a regression's unit were optional in report.json: still are."""
    data = sample_report().to_dict()
    for c in data["search"]["candidates"]:
        del c["name"], c["format"], c["precision"]
    del data["regressions"][0]["unit"]
    report = Report.from_dict(data)
    assert report.search is not None and report.search.candidates[0].name == "" and report.regressions[0].unit == ""
