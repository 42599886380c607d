"""The report.html that a real (tiny) `edgekit compress` writes, opened in headless Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _browser import Browser, chromium_missing_reason, keep_test_artifacts  # noqa: E402

from edgekit.report.html import results_rows  # noqa: E402

REASON = chromium_missing_reason()

pytestmark = [pytest.mark.browser, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from edgekit.config import CompressConfig
    from edgekit.pipeline import compress

    cfg = CompressConfig(dataset="digits", epochs=1, prune_epochs=1, bench_min_runs=3, bench_min_seconds=0.01)
    return compress(cfg, tmp_path_factory.mktemp("html-run") / "run")


def test_compress_report_html_renders_in_chromium(run, tmp_path: Path) -> None:  # noqa: ANN001
    html_path = run.out / "report.html"
    assert html_path.is_file()
    text = html_path.read_text(encoding="utf-8")
    for section in ("problems", "results", "latency", "sizes", "layers", "lineage", "benchmarks", "environment"):
        assert f'id="{section}"' in text, section
    with Browser(width=1400, height=1000) as browser:
        page = browser.open(html_path.as_uri())
        images = page.wait_for_images()
        rows = page.eval("document.querySelectorAll('#results tbody tr').length")
        chosen = page.eval("document.querySelectorAll('#results tbody tr.chosen').length")
        shot = page.screenshot(tmp_path / "report.png")
        errors = page.console_errors()
        remote = page.remote_requests()
    keep_test_artifacts("report-compress-digits", shot, html_path)
    assert errors == []
    assert remote == []
    alts = [alt for alt, *_ in images]
    assert any(alt.startswith("accuracy vs latency") for alt in alts), alts
    assert "raw and gzipped size per artifact" in alts and "per-layer sparsity" in alts
    for alt, w, h, shown in images:
        assert w > 100 and h > 100 and shown > 100, f"plot {alt!r} did not render: {w}x{h}, shown {shown}px"
    assert rows == len(results_rows(run.report))
    assert chosen >= 1  # the chosen artifact's row is highlighted
    assert shot.stat().st_size > 50_000
