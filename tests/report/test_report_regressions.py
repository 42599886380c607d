"""The never-worse-than-parent rule, report side: artifacts larger, slower or less accurate than their parent are
flagged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgekit.artifact import Artifact
from edgekit.report.model import Regression
from edgekit.report.regressions import Tolerance, find_regressions, reference_of, regressions_for_artifacts
from tests.helpers.report_records import ARM, X86, artifact, artifacts, benchmarks, row


def _by_kind(regs: tuple[Regression, ...], artifact_id: str) -> dict[tuple[str, str | None], Regression]:
    return {(g.kind, g.target): g for g in regs if g.artifact_id == artifact_id}


def test_int8_tflite_is_compared_with_the_fp32_tflite_of_the_same_keras_model() -> None:
    arts = artifacts()
    by_id = {a.id: a for a in arts}
    children: dict[str, list] = {}
    for a in arts:
        children.setdefault(a.parent_id or "", []).append(a)
    ref = reference_of(by_id["tfl8"], by_id, children)
    assert ref is not None and ref.id == "ptfl32"  # not its Keras parent, not the baseline's tflite
    assert reference_of(by_id["onnx8"], by_id, children).id == "onnx32"  # type: ignore[union-attr]  # its parent
    assert reference_of(by_id["pruned"], by_id, children).id == "base"  # type: ignore[union-attr]
    assert reference_of(by_id["ptfl32"], by_id, children).id == "tfl32"  # walks up to the baseline's export
    assert reference_of(by_id["tfl32"], by_id, children) is None  # nothing of its format above it


def test_slower_is_a_plain_sentence_per_target() -> None:
    regs = find_regressions(artifacts(), benchmarks())
    slow = _by_kind(regs, "tfl8")[("slower", X86)]
    assert slow.message == ("tfl8 (int8 tflite) slower than ptfl32 (fp32 tflite) on x86-cpu: p50 0.074 vs 0.033 ms "
                            "(batch 1, 1 thread)")
    assert (slow.reference_id, slow.value, slow.reference_value, slow.batch_size, slow.threads) == \
        ("ptfl32", 0.074, 0.033, 1, 1)
    assert ("slower", ARM) not in _by_kind(regs, "tfl8")  # faster under emulation: not flagged there
    assert not any(g.kind == "slower" for g in regs if g.artifact_id == "onnx8")  # 0.050 < 0.060


def test_accuracy_is_compared_on_each_target() -> None:
    regs = _by_kind(find_regressions(artifacts(), benchmarks()), "tfl8")
    worse = regs[("less_accurate", ARM)]  # int8 kernels on ARM lost 1.5 pp; on x86 only 0.2 pp (within tolerance)
    assert worse.message == ("tfl8 (int8 tflite) less accurate than ptfl32 (fp32 tflite) on arm64-qemu: "
                             "test accuracy 94.00 vs 95.50 %")
    assert ("less_accurate", X86) not in regs


def test_larger_and_less_accurate_without_benchmarks() -> None:
    arts = (artifact("base", "train", "keras", "fp32", None, 100, 0.95),
            artifact("bad", "prune.magnitude", "keras", "fp32", "base", 120, 0.90))
    regs = _by_kind(find_regressions(arts, ()), "bad")
    assert regs[("larger", None)].message == "bad (fp32 keras) larger than base (fp32 keras): 120.0 vs 100.0 KB"
    assert regs[("less_accurate", None)].message.endswith("test accuracy 90.00 vs 95.00 %")


def test_tolerance_hides_noise_and_can_be_tightened() -> None:
    arts = (artifact("a", "export.onnx", "onnx", "fp32", None, 100, 0.95),
            artifact("b", "quantize.ptq_int8", "onnx", "int8", "a", 100.5, 0.948))
    rows = (row("a", X86, 0.100, acc=0.95), row("b", X86, 0.104, acc=0.948))
    assert find_regressions(arts, rows) == ()  # +0.5 % bytes, +4 % p50, -0.2 pp: noise
    strict = Tolerance(size_ratio=1.0, latency_ratio=1.0, accuracy_pp=0.0)
    assert {g.kind for g in find_regressions(arts, rows, tolerance=strict)} == {"larger", "slower", "less_accurate"}


def test_same_thread_count_and_only_rows_that_ran() -> None:
    arts = (artifact("a", "export.onnx", "onnx", "fp32", None, 100, 0.95),
            artifact("b", "quantize.ptq_int8", "onnx", "int8", "a", 30, 0.95))
    rows = (row("a", X86, 0.10, threads=4), row("b", X86, 0.20, threads=4),  # compared at 4 threads (no 1-thread row)
            row("a", ARM, 0.10), row("b", ARM, None, status="failed", reason="boom"))
    regs = find_regressions(arts, rows)
    assert [(g.kind, g.target, g.threads) for g in regs] == [("slower", X86, 4)]
    assert "(batch 1, 4 threads)" in regs[0].message


def test_validation_metric_for_the_chooser(tmp_path: Path) -> None:
    """The chooser's call: pipeline Artifacts and raw bench rows, validation accuracy (never the test set)."""
    def art(id: str, fmt: str, precision: str, parent: str | None, size: int, val: float) -> Artifact:
        path = tmp_path / f"{id}.{fmt}"
        path.write_bytes(b"\0" * size)
        return Artifact(id=id, stage="export." + fmt, format=fmt, precision=precision, path=path, parent_id=parent,
                        metrics={"val_accuracy": val, "accuracy": 0.99}, name=id)

    arts = [art("k", "keras", "fp32", None, 1000, 0.95), art("t32", "tflite", "fp32", "k", 900, 0.95),
            art("t8", "tflite", "int8", "k", 300, 0.93)]
    rows = [row("t32", X86, 0.03, acc=0.99).to_dict(), row("t8", X86, 0.07, acc=0.99).to_dict()]
    regs = regressions_for_artifacts(arts, rows)
    assert {(g.artifact_id, g.kind, g.target) for g in regs} == {("t8", "slower", X86), ("t8", "less_accurate", None)}
    acc = next(g for g in regs if g.kind == "less_accurate")
    assert "validation accuracy 93.00 vs 95.00 %" in acc.message
    assert acc.value == pytest.approx(93.0)


def test_build_report_records_regressions_and_warns_about_the_chosen_artifact(tmp_path: Path) -> None:
    """build_report (what compress and bench call) puts the regressions in report.json and the chosen one's in warnings."""
    from edgekit.data.datasets import load_dataset
    from edgekit.report.build import build_report
    from edgekit.report.model import Report

    def art(id: str, fmt: str, precision: str, parent: str | None, size: int, acc: float, stage: str) -> Artifact:
        path = tmp_path / "models" / f"{id}.{fmt}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes(range(256)) * (size // 256))
        return Artifact(id=id, stage=stage, format=fmt, precision=precision, path=path, parent_id=parent,
                        metrics={"accuracy": acc, "val_accuracy": acc}, name=id)

    arts = [art("k", "keras", "fp32", None, 4096, 0.95, "train"), art("t32", "tflite", "fp32", "k", 3840, 0.95, "export.tflite"),
            art("t8", "tflite", "int8", "k", 1024, 0.95, "quantize.ptq_int8")]
    rows = [row("t32", X86, 0.033, acc=0.95).to_dict(), row("t8", X86, 0.074, acc=0.95).to_dict()]
    data = build_report(cfg=None, dataset=load_dataset("digits", train_limit=100, test_limit=50), artifacts=arts,
                        run_dir=tmp_path, verification={}, audits={}, benchmarks=rows, targets=[], search=None,
                        command="test", seconds=1.0, chosen_id="t8")
    report = Report.from_dict(data)
    assert [(g.artifact_id, g.kind, g.reference_id) for g in report.regressions] == [("t8", "slower", "t32")]
    assert data["warnings"] == ["the chosen artifact is worse than its parent: t8 (int8 tflite) slower than t32 "
                                "(fp32 tflite) on x86-cpu: p50 0.074 vs 0.033 ms (batch 1, 1 thread)"]
    assert data["status"] == "ok" and "analysis" not in data and "tune" not in data


def test_rule_one_in_reports_a_drop_within_the_budget_is_a_note_outside_it_a_flag() -> None:
    """With the run's budget, 'less accurate than its parent' is judged against the budget (cumulative, against the
    trained model): tfl8 is 0.2 pp below its parent on x86 (a note) and 2.0 pp below the trained model on ARM (a flag)."""
    from edgekit.report.regressions import judge

    regs, notes = judge(artifacts(), benchmarks(), budget_pp=1.0)
    flags = _by_kind(regs, "tfl8")
    assert flags[("less_accurate", ARM)].message.endswith(
        "test accuracy 94.00 vs 95.50 % (2.00 pp below the trained model: outside the 1 pp budget)")
    assert ("less_accurate", X86) not in flags and ("slower", X86) in flags  # rule 3: still flagged
    assert ("tfl8", "tfl8 (int8 tflite) on x86-cpu: -0.20 pp vs parent, within the 1 pp budget") in notes
    assert ("pruned", "pruned (fp32 keras): -0.50 pp vs parent, within the 1 pp budget") in notes
    # a bigger budget: every drop is a note, nothing is flagged less accurate
    regs, notes = judge(artifacts(), benchmarks(), budget_pp=2.5)
    assert not [g for g in regs if g.kind == "less_accurate"] and len(notes) >= 3


def test_rule_two_baseline_exclusion_and_the_budget_comparison() -> None:
    from edgekit.report.regressions import baseline_exclusion, budget_note, within_budget

    assert within_budget(1.0, 1.0) and not within_budget(1.001, 1.0)
    assert budget_note(0.4, 1.0) == "-0.40 pp vs parent, within the 1 pp budget"
    assert baseline_exclusion("tflite", 100, 0.05, 100, 0.10, X86) == \
        "not smaller than the fp32 tflite baseline (100 ≥ 100 bytes)"
    assert baseline_exclusion("onnx", 50, 0.104, 100, 0.10, X86) is None  # within the 5 % timing tolerance
    assert baseline_exclusion("onnx", 50, 0.2, 100, 0.10, X86) == \
        "slower than the fp32 onnx baseline on x86-cpu at batch 1 (p50 0.200 vs 0.100 ms)"
    # benchmarking on: a missing figure (a failed or skipped benchmark) is no proof of speed and excludes the file
    assert baseline_exclusion("onnx", 50, None, 100, 0.10, X86).startswith("speed unknown: no ok batch-1 benchmark on x86-cpu")
    assert baseline_exclusion("onnx", 50, 0.05, 100, None, X86) == \
        "speed unknown: the fp32 onnx baseline has no ok batch-1 benchmark on x86-cpu to compare with"
    assert baseline_exclusion("onnx", 50, None, 100, None, X86, check_speed=False) is None  # no benchmark: size decides
    assert baseline_exclusion("onnx", 100, None, 100, None, X86, check_speed=False).startswith("not smaller")


def test_rule_two_compares_speed_at_one_thread_count() -> None:
    """1 thread where both ran it, else the fewest both ran; nothing in common is no comparison."""
    from edgekit.report.regressions import batch1_pair, common_threads

    assert common_threads([1, 4], [4, 1]) == 1 and common_threads([2, 4], [4, 8, 2]) == 2
    assert common_threads([2], [4]) is None
    mine = [row("b", X86, 0.20, threads=t) for t in (2, 4)]
    ref = [row("a", X86, 0.10, threads=t) for t in (4, 8)]
    assert batch1_pair(mine, ref, X86) == (0.20, 0.10, 4)
    assert batch1_pair(mine[:1], ref, X86) == (None, 0.10, None)  # no count in common: the file's figure is unknown
    assert batch1_pair(mine, [], X86)[1:] == (None, None)
    failed = [row("b", X86, None, status="failed", reason="boom")]
    assert batch1_pair(failed, ref, X86)[0] is None


def test_budget_section_in_markdown_and_html() -> None:
    """report.json's budget (the margin, each file's bound, decisions, exclusions, notes) in report.md and .html."""
    from edgekit.report.html import render_html
    from edgekit.report.markdown import render_markdown
    from tests.helpers.report_records import budget, sample_report

    report = dataclasses.replace(sample_report(), extra={"budget": budget()})
    md = render_markdown(report)
    assert "## Accuracy budget" in md
    assert ("Budget: 1 pp of accuracy against the trained model, certified by the one-sided 95 % upper "
            "confidence bound of the drop (one-sided exact binomial bound; 180 certification images).") in md
    assert "| onnx8 | +0.56 pp | +2.35 pp | 3 / 2 | no |" in md
    assert "- pruned: magnitude pruning backed_off, validation drop +0.50 pp: 1 bolder choice(s)" in md
    assert "- pruned-lighter: fallback pruning left out: no other pruning choice held" in md  # nothing measured
    assert "- ptfl32: not smaller than the fp32 tflite baseline" in md
    assert "- tfl8 (int8 tflite) on x86-cpu: -0.20 pp vs parent, within the 1 pp budget" in md
    page = render_html(report)
    assert '<section id="budget"><h2>Accuracy budget</h2>' in page
    assert '<tr class="regressed"><td>onnx8</td><td>+0.56 pp</td><td>+2.35 pp</td><td>3 / 2</td><td>no</td></tr>' in page
    assert "within the 1 pp budget</li>" in page
    assert "Accuracy budget" not in render_markdown(sample_report())  # no budget: no section


def test_a_malformed_budget_names_the_field() -> None:
    from edgekit.errors import ReportError
    from edgekit.report.sections import Budget
    from tests.helpers.report_records import budget

    with pytest.raises(ReportError, match=r"budget\.checks\.tfl8\.bound_pp"):
        Budget.from_dict({**budget(), "checks": {"tfl8": {"bound_pp": "wide"}}})
