"""The report a real (tiny) `edgekit.compress` run writes: report.json typed and back, report.html in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import Browser, chromium_missing_reason, keep_test_artifacts
from edgekit.report.html import render_html
from edgekit.report.model import Report
from edgekit.report.table import results_table
from edgekit.report.write import load, regenerate
from tests.helpers.report_records import analysis, sample_report, tune

BROWSER_MISSING = chromium_missing_reason()
needs_browser = [pytest.mark.browser, pytest.mark.skipif(BROWSER_MISSING is not None, reason=BROWSER_MISSING or "")]


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny real run on digits: 1 epoch on 300 images, 100 test images, a few timed runs per cell."""
    import edgekit

    cfg = edgekit.CompressConfig(dataset="digits", epochs=1, prune_epochs=1, train_limit=300, test_limit=100,
                                 bench_min_runs=3, bench_min_seconds=0.01)
    return edgekit.compress(cfg, tmp_path_factory.mktemp("report-run") / "run")


@pytest.mark.slow
def test_real_report_json_types_and_writes_back_the_same_keys(real_run: Any) -> None:
    data = json.loads((real_run.out / "report.json").read_text())
    report = Report.from_dict(data, "report.json")
    assert report.to_dict() == data
    assert report.baseline is not None and report.baseline.stage == "train"
    assert {b.artifact_id for b in report.benchmarks} <= {a.id for a in report.artifacts}
    assert [g.to_dict() for g in report.regressions] == data["regressions"]


@pytest.mark.slow
def test_regenerate_reproduces_what_the_run_wrote(real_run: Any) -> None:
    before = {f: (real_run.out / f).read_bytes() for f in ("report.md", "report.html")}
    regenerate(real_run.out)
    assert {f: (real_run.out / f).read_bytes() for f in before} == before


@pytest.mark.slow
def test_real_report_flags_regressions_everywhere(real_run: Any) -> None:
    report = load(real_run.out)
    md = (real_run.out / "report.md").read_text()
    page = (real_run.out / "report.html").read_text()
    for g in report.regressions:
        assert f"- {g.message}" in md
        assert render_html(report).count("<li") >= len(report.regressions)
    chosen = [g for g in report.regressions if g.artifact_id == report.chosen_id]
    # warnings also hold the closed loop's (a candidate that left the search, budget notes): count the regression ones
    regression_warnings = [w for w in report.warnings if w.startswith("the chosen artifact is worse than its parent: ")]
    assert len(regression_warnings) == len(chosen)
    assert (f"{len(report.warnings)} warning" in md.splitlines()[0]) == bool(report.warnings)
    for section in ("problems", "results", "regressions", "latency", "sizes", "layers", "lineage", "benchmarks",
                    "environment"):
        assert f'id="{section}"' in page, section
    assert 'id="analysis"' not in page or report.analysis is not None


@pytest.mark.slow
@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_browser)])
def test_real_report_renders_in_headless_chromium(real_run: Any, tmp_path: Path, _: None) -> None:
    report = load(real_run.out)
    html_path = real_run.out / "report.html"
    with Browser(width=1400, height=1000) as browser:
        page = browser.open(html_path.as_uri())
        images = page.wait_for_images()
        rows = page.eval("document.querySelectorAll('#results tbody tr').length")
        chosen = page.eval("document.querySelectorAll('#results tbody tr.chosen').length")
        # click the p50 header twice: the table sorts descending by p50
        page.eval("document.querySelectorAll('#results th')[7].click(); document.querySelectorAll('#results th')[7].click()")
        p50s = page.eval("Array.from(document.querySelectorAll('#results tbody tr')).map(r => r.cells[7].dataset.v)"
                         ".filter(v => v !== undefined).map(Number)")
        shot = page.screenshot(tmp_path / "report.png")
        errors = page.console_errors()
        remote = page.remote_requests()
    keep_test_artifacts("report-compress-digits", shot, html_path)
    assert errors == [] and remote == []
    alts = [alt for alt, *_ in images]
    assert any(alt.startswith("accuracy vs latency") for alt in alts), alts
    assert "raw and gzipped size per artifact" in alts and "per-layer sparsity" in alts
    for alt, w, h, shown in images:
        assert w > 100 and h > 100 and shown > 100, f"plot {alt!r} did not render: {w}x{h}, shown {shown}px"
    assert rows == len(results_table(report))
    assert chosen >= 1  # the chosen artifact's row is highlighted
    assert p50s and p50s == sorted(p50s, reverse=True)
    assert shot.stat().st_size > 50_000


@pytest.mark.parametrize("_", [pytest.param(None, marks=needs_browser)])
def test_every_section_renders_in_headless_chromium(tmp_path: Path, _: None) -> None:
    """Fast tier: a report built in code with every optional section (analysis, tuning) in a real browser."""
    report = sample_report(analysis=analysis(), tune=tune())
    html_path = tmp_path / "report.html"
    html_path.write_text(render_html(report, tmp_path), encoding="utf-8")
    with Browser(width=1400, height=1000) as browser:
        page = browser.open(html_path.as_uri())
        images = page.wait_for_images()
        regressed = page.eval("document.querySelectorAll('#results tbody tr.regressed').length")
        layers = page.eval("Array.from(document.querySelectorAll('#analysis tbody tr')).map(r => r.cells[0].textContent)")
        trials = page.eval("document.querySelectorAll('#tune table.sortable tbody tr').length")
        shot = page.screenshot(tmp_path / "report.png")
        errors = page.console_errors()
        remote = page.remote_requests()
    keep_test_artifacts("report-every-section", shot, html_path)
    assert errors == [] and remote == []
    assert len(images) == 7
    for alt, w, h, shown in images:
        assert w > 100 and h > 100 and shown > 100, f"plot {alt!r} did not render: {w}x{h}, shown {shown}px"
    assert regressed == sum(1 for r in results_table(report) if r.flags)
    assert layers == ["conv1", "dense1"] and trials == 2
