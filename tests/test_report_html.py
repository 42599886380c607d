"""report.html: content from the sample report, robustness to partial reports, and a real headless-Chromium render."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from edgekit.report.html import bench_rows, render_html, results_rows
from edgekit.report.plots import Point, pareto_indices

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "report_sample.json"  # hand-written: every section, emulated and failed rows
REAL_RUN = FIXTURES / "report_run_digits.json"  # a real `edgekit compress --dataset digits --epochs 1` run


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_pareto_front_keeps_only_undominated_points() -> None:
    pts = [Point("slow-good", 2.0, 0.97), Point("fast-ok", 1.0, 0.95), Point("dominated", 2.5, 0.94),
           Point("fast-bad", 0.5, 0.90), Point("tie", 1.0, 0.95)]
    assert [pts[i].label for i in pareto_indices(pts)] == ["fast-bad", "fast-ok", "tie", "slow-good"]


def test_results_rows_compute_ratios_and_deltas(sample: dict[str, Any]) -> None:
    rows = results_rows(sample)
    int8 = next(r for r in rows if r["id"] == "e2b74d1c0f95" and r["target"] == "x86-cpu")
    assert int8["x_smaller"] == pytest.approx(419340 / 110872)  # vs the fp32 tflite export
    assert int8["delta_pp"] == pytest.approx(-0.39)
    assert int8["p50"] == pytest.approx(0.041) and int8["emulated"] is False and int8["chosen"]
    keras = [r for r in rows if r["format"] == "keras"]
    assert len(keras) == 2 and all(r["p50"] is None and r["accuracy_pct"] for r in keras)


def test_accuracy_is_the_targets_own_and_agreement_is_vs_the_reference_target(sample: dict[str, Any]) -> None:
    r = copy.deepcopy(sample)
    for b in r["benchmarks"]:
        if b["artifact_id"] == "3d58a0f6c7b2" and b["target"] in ("x86-cpu", "arm64-qemu") and b["status"] == "ok":
            b.update(reference_target="x86-cpu", target_agreement=1.0)
            if b["target"] == "arm64-qemu":
                b.update(accuracy=0.9530, target_agreement=0.9966)  # int8 kernels differ on ARM
    rows = {(x["id"], x["target"]): x for x in results_rows(r)}
    assert rows[("3d58a0f6c7b2", "arm64-qemu")]["accuracy_pct"] == pytest.approx(95.30)
    assert rows[("3d58a0f6c7b2", "x86-cpu")]["accuracy_pct"] == pytest.approx(95.55)
    assert rows[("3d58a0f6c7b2", "nvidia-cuda")]["accuracy_pct"] is None  # skipped: no figure under its name
    bench = [b for b in bench_rows(r) if b["name"] == "pruned-int8.onnx" and b["batch"] == 1]
    agree = {b["target"]: b["target_agree_pct"] for b in bench}
    assert agree["arm64-qemu"] == pytest.approx(99.66) and agree["x86-cpu"] is None  # vs itself: not shown
    assert "99.66" in render_html(r)


def test_html_has_every_section_and_labels_emulation(sample: dict[str, Any]) -> None:
    page = render_html(sample, Path("runs/x"))
    for section in ("problems", "results", "latency", "sizes", "layers", "lineage", "search", "benchmarks", "environment"):
        assert f'id="{section}"' in page
    assert "EMULATED" in page and "Pareto front" in page
    assert page.count('<img class="plot"') == 5  # x86 + arm64 (separate axes), sizes, layers, search
    assert "top-1 agreement 96.66 %" in page and "Status: failed" in page
    assert "avx512_vnni" in page and "Intel(R) Xeon(R)" in page


def test_html_fetches_nothing_from_the_network(sample: dict[str, Any]) -> None:
    page = render_html(sample)
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert not re.search(r"@import", page)
    for m in re.finditer(r'src="([^"]+)"', page):
        assert m.group(1).startswith("data:image/svg+xml;base64,")


def test_text_is_escaped(sample: dict[str, Any]) -> None:
    r = copy.deepcopy(sample)
    r["artifacts"][0]["name"] = "<script>alert(1)</script>"
    r["problems"].append("bad & <b>bold</b>")
    page = render_html(r)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "bad &amp; &lt;b&gt;bold&lt;/b&gt;" in page


@pytest.mark.parametrize("strip", ["benchmarks", "search", "audit", "single", "failed-rows", "empty"])
def test_partial_reports_render(sample: dict[str, Any], strip: str) -> None:
    r = copy.deepcopy(sample)
    if strip == "benchmarks":
        r.pop("benchmarks")
    elif strip == "search":
        r.pop("search")
    elif strip == "audit":
        for a in r["artifacts"]:
            a["audit"] = {"layers": [{"name": "x"}]}  # keys missing
    elif strip == "single":
        r["artifacts"] = r["artifacts"][:1]
        r["benchmarks"] = []
    elif strip == "failed-rows":
        for b in r["benchmarks"]:
            b.update(status="failed", latency_ms=None, throughput_per_s=None)
    else:
        r = {}
    page = render_html(r)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


# --------------------------------------------------------------------------- browser
@pytest.mark.browser
@pytest.mark.parametrize("fixture", [FIXTURE, REAL_RUN], ids=["sample", "real-run"])
def test_report_renders_in_headless_chromium(fixture: Path, tmp_path: Path) -> None:
    from _browser import Browser, chromium_missing_reason, keep_test_artifacts

    if (reason := chromium_missing_reason()) is not None:
        pytest.skip(reason)
    sample = json.loads(fixture.read_text())
    n_plots = render_html(sample).count('<img class="plot"')
    html_path = tmp_path / "report.html"
    html_path.write_text(render_html(sample, tmp_path), encoding="utf-8")
    with Browser(width=1400, height=1000) as browser:
        page = browser.open(html_path.as_uri())
        images = page.wait_for_images()
        rows = page.eval("document.querySelectorAll('#results tbody tr').length")
        # click the p50 header twice: the table sorts descending by p50
        page.eval("document.querySelectorAll('#results th')[7].click(); document.querySelectorAll('#results th')[7].click()")
        p50s = page.eval("Array.from(document.querySelectorAll('#results tbody tr')).map(r => r.cells[7].dataset.v)"
                         ".filter(v => v !== undefined).map(Number)")
        shot = page.screenshot(tmp_path / "report.png")
        errors = page.console_errors()
        remote = page.remote_requests()
    keep_test_artifacts(f"report-{fixture.stem}", shot, html_path)
    assert errors == []
    assert remote == []
    assert len(images) == n_plots >= 2
    for alt, w, h, shown in images:
        assert w > 100 and h > 100 and shown > 100, f"plot {alt!r} did not render: {w}x{h}, shown {shown}px"
    assert rows == len(results_rows(sample))
    assert p50s and p50s == sorted(p50s, reverse=True)  # sorted descending by p50
    assert shot.stat().st_size > 50_000


@pytest.mark.parametrize("name,short", [
    ("reference_cnn/conv1/Relu;reference_cnn/conv1/BiasAdd;reference_cnn/conv1/Conv2D", "conv1"),
    ("model/dense/MatMul", "dense"), ("conv2d", "conv2d"), ("a/b", "a/b"), ("x" * 60, "x" * 39 + "…"),
])
def test_short_layer_names(name: str, short: str) -> None:
    from edgekit.report.html import short_layer_name

    assert short_layer_name(name) == short
