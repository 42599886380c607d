"""report.md and report.html from typed records: one results table, regressions, optional sections, partial reports."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown, render_table
from edgekit.report.model import Report
from edgekit.report.page_sections import short_layer_name
from edgekit.report.plots import Point, pareto_indices
from edgekit.report.sections import Executor
from edgekit.report.table import results_table
from edgekit.report.write import regenerate, write_reports
from tests.helpers.report_records import ARM, CUDA, X86, analysis, budget, sample_report, tune


@pytest.fixture(scope="module")
def full_page() -> str:
    """report.html of the sample report with every optional section (rendered once: plots take a while)."""
    return render_html(sample_report(analysis=analysis(), tune=tune()), Path("runs/x"))


def test_results_table_one_row_per_artifact_and_target() -> None:
    rows = {(r.artifact.id, r.target): r for r in results_table(sample_report())}
    assert set(rows) == {("base", None), ("pruned", None), ("tfl32", X86), ("onnx32", X86), ("onnx32", CUDA),
                         ("ptfl32", X86), ("ptfl32", ARM), ("tfl8", X86), ("tfl8", ARM), ("onnx8", X86)}
    int8 = rows[("tfl8", X86)]
    assert int8.x_smaller == pytest.approx(480 / 130, rel=1e-3)  # vs the fp32 tflite of the baseline
    assert int8.delta_pp == pytest.approx(-0.7) and int8.p50 == 0.074 and int8.chosen and not int8.emulated
    assert int8.throughput == pytest.approx(32 * 1000 / 0.4)  # the best over batch sizes
    assert int8.flags == ("slower",)
    assert rows[("tfl8", ARM)].accuracy_pct == pytest.approx(94.0) and rows[("tfl8", ARM)].emulated  # the target's own
    assert rows[("tfl8", ARM)].flags == ("less_accurate",)
    skipped = rows[("onnx32", CUDA)]
    assert skipped.status == "skipped" and skipped.accuracy_pct is None and skipped.p50 is None  # no CPU figure here
    assert rows[("base", None)].accuracy_pct == pytest.approx(96.0) and rows[("base", None)].p50 is None


def test_markdown_and_html_draw_the_same_table(full_page: str) -> None:
    report = sample_report()
    md_rows = [line for line in render_table(report).splitlines()[2:]]
    results = full_page.split('id="results"')[1].split("</section>")[0]
    assert len(md_rows) == len(results_table(report)) == results.count("<tr class=") 


def test_markdown_flags_regressions_and_the_status_says_so() -> None:
    md = render_markdown(sample_report())
    assert md.startswith("# edgekit report (ok, 2 warnings)")
    assert "**Warning:** the chosen artifact is worse than its parent: tfl8 (int8 tflite) slower than ptfl32" in md
    assert "## Worse than the model they were made from" in md
    assert "- tfl8 (int8 tflite) slower than ptfl32 (fp32 tflite) on x86-cpu: p50 0.074 vs 0.033 ms" in md
    assert "| tfl8 **(chosen)** | tflite | int8 |" in md and "| slower |" in md
    assert "| ★ | ✓ | not smaller than the fp32 tflite baseline |" in md  # the search's exclusion, said


def test_html_has_every_section_and_labels_emulation(full_page: str) -> None:
    page = full_page
    for section in ("problems", "results", "regressions", "latency", "sizes", "layers", "lineage", "search",
                    "analysis", "tune", "benchmarks", "environment"):
        assert f'id="{section}"' in page, section
    assert "EMULATED" in page and "Pareto front" in page
    alts = re.findall(r'<img class="plot" src="[^"]+" alt="([^"]+)"', page)
    assert alts == ["accuracy vs latency on x86-cpu", "accuracy vs latency on arm64-qemu", "raw and gzipped size per artifact",
                    "per-layer sparsity", "search candidates", "per-layer sensitivity",
                    "validation accuracy per epoch per trial"]
    assert "Status: ok, 2 warnings" in page and "slower than ptfl32 (fp32 tflite) on x86-cpu" in page
    assert "avx512_vnni" in page and "Intel(R) Xeon(R)" in page and "Weight share by dtype: int8: 99.0%" in page
    assert "pruning 80 % costs 2.5 pp &gt; budget" in page and "50 %: +0.40, 80 %: +2.50" in page  # analysis table
    assert "learning_rate=0.001, batch_size=64" in page and "<th>executor</th><td>local</td>" in page  # tune


def test_analysis_lists_the_guilty_layers_first(full_page: str) -> None:
    section = full_page.split('id="analysis"')[1].split("</section>")[0]
    assert section.index("conv1") < section.index("dense1")
    md = render_markdown(sample_report(analysis=analysis(), tune=tune()))
    assert "## Per-layer sensitivity (budget 1 pp)" in md and "| conv1 | Conv2D | 288 | +2.50 | 31.0 | yes |" in md
    assert "## Tuning trials" in md and "| 0 **(best)** | learning_rate=0.001, batch_size=64 | 95.00 % | 3 | ok |" in md
    assert "Best trial **0**: validation 95.00 %, test 94.00 % (measured once, for the winner)." in md


def test_a_tune_only_report_renders_its_trials() -> None:
    """`edgekit tune` writes a report with a tune section and no artifacts; both pages show the trials."""
    data = {"report_version": 1, "status": "ok", "problems": [], "warnings": ["winner uses settings X"],
            "dataset": {"name": "digits", "train_size": 300, "val_size": 50, "test_size": 100},
            "tune": {"trials": [{"id": "0", "config": {"learning_rate": 0.01}, "val_accuracy": 0.9, "epochs_run": 2,
                                 "history": [0.8, 0.9], "status": "completed", "restarts": 0},
                                {"id": "1", "config": {"learning_rate": 0.5}, "val_accuracy": None, "epochs_run": 0,
                                 "history": [], "status": "error", "restarts": 1, "error": "NaN loss"}],
                     "best": {"id": "0", "config": {"learning_rate": 0.01}, "val_accuracy": 0.9, "test_accuracy": 0.88,
                              "epochs_run": 2, "recipe": {"epochs": 2}, "recipe_file": "recipe.yaml", "trials": 2},
                     "executor": {"kind": "ray", "address": "local", "nodes": 1, "workers": 2},
                     "metric": "val_accuracy", "wall_s": 12.0}}
    report = Report.from_dict(data)
    assert report.to_dict() == data
    md, page = render_markdown(data), render_html(data)
    assert "| 1 | learning_rate=0.5 | – | 0 | error |" in md and "**Warning:** winner uses settings X" in md
    assert 'id="tune"' in page and 'id="results"' not in page and "Best trial <b>0</b>" in page
    assert page.count('<img class="plot"') == 1  # the per-epoch plot


@pytest.mark.parametrize("strip", ["benchmarks", "search", "audit", "single", "failed-rows", "regressions", "empty"])
def test_partial_reports_render(strip: str) -> None:
    r = sample_report()
    if strip == "benchmarks":
        r = dataclasses.replace(r, benchmarks=(), regressions=(), warnings=())
    elif strip == "search":
        r = dataclasses.replace(r, search=None)
    elif strip == "audit":
        r = dataclasses.replace(r, artifacts=tuple(dataclasses.replace(a, audit=None) for a in r.artifacts))
    elif strip == "single":
        r = dataclasses.replace(r, artifacts=r.artifacts[:1], benchmarks=(), regressions=(), warnings=(),
                                chosen_id=None, search=None)
    elif strip == "failed-rows":
        r = dataclasses.replace(r, benchmarks=tuple(dataclasses.replace(b, status="failed", latency_ms=None,
                                                                        throughput_per_s=None) for b in r.benchmarks))
    elif strip == "regressions":
        r = dataclasses.replace(r, regressions=(), warnings=())
    else:
        r = Report()
    page = render_html(r)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert 'id="analysis"' not in page and 'id="tune"' not in page  # optional sections: only when present
    assert render_markdown(r).startswith("# edgekit report")


def test_html_fetches_nothing_from_the_network(full_page: str) -> None:
    page = full_page
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert not re.search(r"@import", page)
    for m in re.finditer(r'src="([^"]+)"', page):
        assert m.group(1).startswith("data:image/svg+xml;base64,")


def test_text_is_escaped() -> None:
    r = sample_report()
    first = dataclasses.replace(r.artifacts[0], name="<script>alert(1)</script>")
    r = dataclasses.replace(r, artifacts=(first, *r.artifacts[1:]), problems=("bad & <b>bold</b>",))
    page = render_html(r)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "bad &amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_every_value_on_the_page_is_escaped_by_the_templates() -> None:
    """Names, reasons and notes reach every table, list, tree and paragraph escaped (autoescaped templates)."""
    evil = '<img src=x onerror="alert(1)">'
    r = sample_report(analysis=analysis(), tune=tune())
    arts = tuple(dataclasses.replace(a, name=evil) if a.id == "tfl8" else a for a in r.artifacts)
    rows = tuple(dataclasses.replace(b, reason=evil) if not b.ok else b for b in r.benchmarks)
    r = dataclasses.replace(r, artifacts=arts, benchmarks=rows, warnings=(evil,), extra={"budget": {"notes": [evil]}})
    page = render_html(r)
    assert "<img src=x" not in page
    escaped = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
    for section in ("problems", "results", "lineage", "benchmarks", "budget"):
        assert escaped in page.split(f'id="{section}"')[1].split("</section>")[0], section


def test_both_pages_draw_each_shared_section_from_one_definition() -> None:
    """A section meant for both pages (edgekit.report.document) is in report.md and report.html alike."""
    from edgekit.report.document import sections

    report = sample_report(analysis=analysis(), tune=tune(), executor=Executor("ray", "h:1", 2, 4),
                           extra={"budget": budget()})
    md, page = render_markdown(report), render_html(report)
    shared = [s for s in sections(report) if s.only is None]
    assert {s.id for s in shared} >= {"results", "regressions", "search", "analysis", "tune", "budget", "executor"}
    for s in shared:
        assert f'<section id="{s.id}"><h2>{s.title}</h2>' in page, s.id
        title = s.title if s.md_title is None else s.md_title
        assert not title or f"\n## {title}\n" in md, s.id


def test_pareto_front_keeps_only_undominated_points() -> None:
    pts = [Point("slow-good", 2.0, 0.97), Point("fast-ok", 1.0, 0.95), Point("dominated", 2.5, 0.94),
           Point("fast-bad", 0.5, 0.90), Point("tie", 1.0, 0.95)]
    assert [pts[i].label for i in pareto_indices(pts)] == ["fast-bad", "fast-ok", "tie", "slow-good"]


@pytest.mark.parametrize("name,short", [
    ("reference_cnn/conv1/Relu;reference_cnn/conv1/BiasAdd;reference_cnn/conv1/Conv2D", "conv1"),
    ("model/dense/MatMul", "dense"), ("conv2d", "conv2d"), ("a/b", "a/b"), ("x" * 60, "x" * 39 + "…"),
])
def test_short_layer_names(name: str, short: str) -> None:
    assert short_layer_name(name) == short


# --------------------------------------------------------------------------- files
def test_write_reports_writes_three_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    report = sample_report()
    written = write_reports(tmp_path, report.to_dict())
    assert [p.name for p in written] == ["report.json", "report.md", "report.html"]
    assert json.loads((tmp_path / "report.json").read_text()) == report.to_dict()
    with pytest.raises(Exception, match="already exists"):
        write_reports(tmp_path, report)


def test_regenerate_rewrites_md_and_html_from_report_json(tmp_path: Path) -> None:
    write_reports(tmp_path, sample_report())
    before = {f: (tmp_path / f).read_bytes() for f in ("report.json", "report.md", "report.html")}
    (tmp_path / "report.md").write_text("stale")
    regenerate(tmp_path)
    assert {f: (tmp_path / f).read_bytes() for f in before} == before


def test_malformed_report_json_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad report.json is refused in one line before report.html or report.md is touched."""
    write_reports(tmp_path, sample_report())
    data = json.loads((tmp_path / "report.json").read_text())
    data["benchmarks"][4]["latency_ms"]["p50"] = "fast"
    (tmp_path / "report.json").write_text(json.dumps(data))
    (tmp_path / "report.html").write_text("old html")
    (tmp_path / "report.md").write_text("old md")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'report.json'}: benchmarks[4].latency_ms.p50: expected a number" in err
    assert (tmp_path / "report.html").read_text() == "old html" and (tmp_path / "report.md").read_text() == "old md"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json", "report.md"]  # no temp files


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]", '{"artifacts": 3}'])
def test_bad_report_json_is_one_line_exit_2(tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "report.json") in err
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "report.md").exists()


def test_an_older_report_says_regressions_were_not_checked() -> None:
    data = sample_report().to_dict()
    del data["regressions"]
    assert "Not checked: this report.json was written by an edgekit" in render_html(Report.from_dict(data))
    assert "None: no artifact is larger" in render_html(Report.from_dict({**data, "regressions": []}))
