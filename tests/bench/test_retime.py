"""A file the benchmark found slower than its fp32 baseline, or than its parent, is timed again in turns before the
chooser excludes it or the report flags it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.artifact import Artifact
from edgekit.bench.api import Timing
from edgekit.bench.retime import retime
from edgekit.bench.tiny import write_tiny_onnx
from edgekit.config import CompressConfig
from edgekit.report.model import ArtifactRecord
from edgekit.report.regressions import regressions_for_artifacts
from edgekit.rules import SPEED_CHECKS, SpeedCheck
from edgekit.search import choose, exclusions, parent_speed_suspects, speed_checks, speed_suspects
from edgekit.targets import get_target

TARGET = "x86-cpu"


def _file(tmp: Path, name: str, stage: str, size: int, parent: str | None, precision: str = "fp32") -> Artifact:
    path = tmp / f"{name}.onnx"
    path.write_bytes(b"x" * size)
    return Artifact(name, stage, "onnx", precision, path, parent, {}, {"val_accuracy": 0.9}, None,  # type: ignore[arg-type]
                    name)


def _rows(p50: dict[str, float]) -> list[dict]:
    return [{"artifact_id": a, "target": TARGET, "batch_size": 1, "threads": 1, "status": "ok",
             "latency_ms": {"p50": v}} for a, v in p50.items()]


def _run(tmp: Path) -> list[Artifact]:
    train = Artifact("train", "train", "keras", "fp32", tmp / "m.keras", None, {}, {"val_accuracy": 0.9}, None,
                     "baseline")
    return [train, _file(tmp, "base", "export.onnx", 1000, "train"),
            _file(tmp, "slowish", "quantize.ptq_int8", 300, "base", "int8"),  # 4 % slower: within the tolerance
            _file(tmp, "slow", "quantize.ptq_int8", 200, "base", "int8"),  # 30 % slower in the first benchmark
            _file(tmp, "bigger", "quantize.ptq_int8", 1200, "base", "int8")]  # slower, but not smaller anyway


def test_suspects_are_the_smaller_files_slower_beyond_the_tolerance(tmp_path: Path) -> None:
    arts = _run(tmp_path)
    rows = _rows({"base": 0.10, "slowish": 0.104, "slow": 0.13, "bigger": 0.2})
    pairs = speed_suspects(arts, rows, TARGET)
    assert pairs == [SpeedCheck("slow", "base", TARGET, 1, (0.13,), (0.10,))]
    assert speed_suspects(arts, rows, TARGET, skip={"slow"}) == []  # excluded already (failed verification)


def test_the_chooser_judges_speed_on_the_medians_timed_in_turns(tmp_path: Path) -> None:
    """First benchmark: 'slow' 30 % slower. Timed again in turns it is as fast: eligible and chosen (smallest).
    Timed again and still slower: excluded, and the reason says it was timed in turns."""
    arts = _run(tmp_path)
    rows = _rows({"base": 0.10, "slowish": 0.104, "slow": 0.13, "bigger": 0.2})
    cfg = CompressConfig(max_accuracy_drop=1.0, target=TARGET)
    before = choose(cfg, arts, rows, [get_target(TARGET)])
    assert "slow" in before["excluded"] and before["chosen_id"] == "slowish"
    same = SpeedCheck("slow", "base", TARGET, 1, (0.13, 0.099, 0.101), (0.10, 0.10, 0.102))
    checked = [a.with_metrics(**{SPEED_CHECKS: [same.to_dict()]}) if a.id == "slow" else a for a in arts]
    assert speed_checks(checked) == {("slow", "base"): same}
    legacy = [a.with_metrics(speed_check=same.to_dict()) if a.id == "slow" else a for a in arts]  # older reports
    assert speed_checks(legacy) == {("slow", "base"): same}
    after = choose(cfg, checked, rows, [get_target(TARGET)])
    assert "slow" not in after["excluded"] and after["chosen_id"] == "slow"
    still = SpeedCheck("slow", "base", TARGET, 1, (0.13, 0.125, 0.128), (0.10, 0.101, 0.099))
    checked = [a.with_metrics(**{SPEED_CHECKS: [still.to_dict()]}) if a.id == "slow" else a for a in arts]
    cands = after["candidates"]
    why = exclusions(checked, rows, cands, TARGET)
    assert why["slow"] == ("slower than the fp32 onnx baseline on x86-cpu at batch 1 (median p50 timed in turns "
                           "0.128 vs 0.100 ms)")


def test_retime_times_both_files_again_in_turns_on_the_target(tmp_path: Path) -> None:
    """Two real ONNX files on this machine's profile: each gets the benchmark's first p50 and two more."""
    train = Artifact("train", "train", "keras", "fp32", tmp_path / "m.keras", None, {}, {}, None, "baseline")
    base = Artifact("base", "export.onnx", "onnx", "fp32", write_tiny_onnx(tmp_path / "base.onnx", seed=0), "train",
                    {}, {}, None, "baseline-onnx")
    other = Artifact("other", "quantize.ptq_int8", "onnx", "int8", write_tiny_onnx(tmp_path / "other.onnx", seed=1),
                     "base", {}, {}, None, "other")
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    pair = SpeedCheck("other", "base", TARGET, 1, (1.0,), (0.5,))
    checks = retime([pair], [train, base, other], x, np.zeros(8, np.int64), [get_target(TARGET)],
                    Timing(warmup_runs=1, min_runs=5, min_seconds=0.01))
    assert [(c.file_id, c.baseline_id) for c in checks] == [("other", "base")]
    got = checks[0]
    assert got.p50_ms[0] == 1.0 and got.baseline_p50_ms[0] == 0.5  # the benchmark's own figures come first
    assert len(got.p50_ms) == 3 and len(got.baseline_p50_ms) == 3
    assert all(0 < v < 0.5 for v in got.p50_ms[1:] + got.baseline_p50_ms[1:])  # a tiny model, timed for real
    assert got.median_ms < 1.0


def test_a_file_slower_than_its_parent_is_flagged_on_the_medians_timed_in_turns(tmp_path: Path) -> None:
    """The report's "slower than its parent" flag: the benchmark's first p50s name the suspects; a pair timed again
    in turns and found as fast is not flagged, one still slower is, and the flag says how it was timed."""
    arts = _run(tmp_path)
    rows = _rows({"base": 0.10, "slowish": 0.104, "slow": 0.13, "bigger": 0.2})
    pairs = parent_speed_suspects(arts, rows, [TARGET])
    assert sorted((p.file_id, p.baseline_id, p.p50_ms, p.baseline_p50_ms) for p in pairs) == [
        ("bigger", "base", (0.2,), (0.10,)), ("slow", "base", (0.13,), (0.10,))]
    assert parent_speed_suspects(arts, rows, [TARGET], skip={"bigger"})[0].file_id == "slow"
    assert parent_speed_suspects(arts, rows, ["arm64-qemu"]) == []  # only the targets asked for

    def slower_flags(files: list[Artifact]) -> dict[str, str]:
        return {r.artifact_id: r.message for r in regressions_for_artifacts(files, rows) if r.kind == "slower"}

    assert set(slower_flags(arts)) == {"slow", "bigger"}
    same = SpeedCheck("slow", "base", TARGET, 1, (0.13, 0.099, 0.101), (0.10, 0.10, 0.102))
    unrelated = SpeedCheck("slow", "bigger", TARGET, 1, (0.5,), (0.1,))  # a check against another file
    checked = [a.with_metrics(**{SPEED_CHECKS: [unrelated.to_dict(), same.to_dict()]}) if a.id == "slow" else a
               for a in arts]
    assert set(slower_flags(checked)) == {"bigger"}
    still = SpeedCheck("slow", "base", TARGET, 1, (0.13, 0.125, 0.128), (0.10, 0.101, 0.099))
    checked = [a.with_metrics(**{SPEED_CHECKS: [still.to_dict()]}) if a.id == "slow" else a for a in arts]
    assert "median p50 timed in turns 0.128 vs 0.100 ms" in slower_flags(checked)["slow"]
    record = ArtifactRecord.from_dict({"id": "slow", "format": "onnx", "metrics": {SPEED_CHECKS: [still.to_dict()]}})
    assert record.speed_checks == (still,)  # a report.json's records carry them to the report's flags


def test_malformed_speed_checks_in_a_report_are_skipped() -> None:
    """A report.json edited by hand or by another tool: entries that are not checks are ignored, the good one read."""
    good = SpeedCheck("f", "base", TARGET, 1, (0.2,), (0.1,))
    metrics = {SPEED_CHECKS: [5, {"baseline_id": "base"}, {**good.to_dict(), "threads": "x"},
                              {**good.to_dict(), "p50_ms": None}, good.to_dict()]}
    assert ArtifactRecord.from_dict({"id": "f", "format": "onnx", "metrics": metrics}).speed_checks == (good,)
    assert ArtifactRecord.from_dict({"id": "f", "format": "onnx", "metrics": {SPEED_CHECKS: "x"}}).speed_checks == ()
