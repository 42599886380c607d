"""One real end-to-end run on a small slice: train → prune → int8 → TFLite + ONNX → verify → bench → report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgekit.config import CompressConfig
from edgekit.pipeline import compress

pytestmark = pytest.mark.slow  # every test here trains (compress runs with epochs ≥ 1)

FAST_BENCH = dict(bench_min_runs=3, bench_min_seconds=0.01)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("e2e") / "run"
    cfg = CompressConfig(dataset="digits", epochs=3, prune_epochs=2, sparsity=0.5, **FAST_BENCH)
    return compress(cfg, out)


def by_name(report: dict, name: str) -> dict:
    return next(a for a in report["artifacts"] if a["name"] == name)


def test_report_schema(run) -> None:
    report = json.loads((run.out / "report.json").read_text())
    assert report["edgekit_version"] and report["seed"] == 0
    assert {"name", "train_size", "test_size"} <= set(report["dataset"]) and report["dataset"]["name"] == "digits"
    for a in report["artifacts"]:
        assert {"id", "stage", "format", "precision", "path", "bytes", "sha256", "parent_id", "accuracy", "sparsity"} <= set(a)
        assert a["format"] in ("keras", "tflite", "onnx") and a["precision"] in ("fp32", "fp16", "int8", "mixed")
        assert (run.out / a["path"]).is_file()
    stages = {a["stage"] for a in report["artifacts"]}
    assert stages == {"train", "prune.magnitude", "export.tflite", "export.onnx", "quantize.ptq_int8",
                      "quantize.ptq_float16"}
    for b in report["benchmarks"]:
        assert {"artifact_id", "runtime", "target", "provider", "status", "reason", "batch_size", "threads",
                "latency_ms", "throughput_per_s", "accuracy", "top1_agreement"} <= set(b)
    assert (run.out / "report.md").read_text().count("\n|") >= 8


def test_baseline_well_above_chance(run) -> None:
    assert by_name(run.report, "baseline")["accuracy"] > 0.6  # 10 classes: chance is 0.1


def test_exports_match_their_parents(run) -> None:
    for name in ("baseline-tflite", "baseline-onnx", "pruned-tflite", "pruned-onnx"):
        v = by_name(run.report, name)["verification"]
        assert v["status"] == "ok" and v["max_abs_diff"] <= 1e-4 and v["top1_agreement"] >= 0.999, (name, v)
    for name in ("pruned-int8-tflite", "pruned-int8-onnx"):
        v = by_name(run.report, name)["verification"]
        assert v["top1_agreement"] >= 0.97, (name, v)
    assert run.report["status"] == "ok"


def test_int8_files_are_really_int8_and_smaller(run) -> None:
    onnx_art = by_name(run.report, "pruned-int8-onnx")
    model = onnx.load(str(run.out / onnx_art["path"]))
    weights = [i for i in model.graph.initializer if len(i.dims) >= 2]
    floats = [list(i.dims) for i in weights if i.data_type != onnx.TensorProto.INT8]
    assert weights and floats in ([], [[32, 1, 3, 3]])  # but conv1 (1 input channel) stays float: OrtQuantConfig.float_thin_convs
    for fmt in ("tflite", "onnx"):
        assert by_name(run.report, f"pruned-int8-{fmt}")["bytes"] <= 0.30 * by_name(run.report, f"baseline-{fmt}")["bytes"]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(run.out / by_name(run.report, "pruned-int8-tflite")["path"]))
    dtypes = {d["index"]: d["dtype"] for d in interp.get_tensor_details()}
    weights = [op["inputs"][1] for op in interp._get_ops_details() if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert weights and np.int8 in {dtypes[i] for i in weights}  # the weights, found by the ops that read them


def test_pruned_model_is_sparse(run) -> None:
    assert by_name(run.report, "pruned")["sparsity"] == pytest.approx(0.5, abs=0.05)


def test_benchmark_rows_report_the_real_provider(run) -> None:
    rows = run.report["benchmarks"]
    assert {(r["batch_size"], r["threads"]) for r in rows} >= {(1, 1), (32, 1)}
    for r in rows:
        assert r["status"] == "ok", r
        assert r["provider"] in r["providers"]
        lat = r["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert r["accuracy"] == pytest.approx(by_id(run.report, r["artifact_id"])["accuracy"], abs=1e-9)
    assert {r["provider"] for r in rows if r["runtime"] == "onnxruntime"} == {"CPUExecutionProvider"}


def by_id(report: dict, artifact_id: str) -> dict:
    return next(a for a in report["artifacts"] if a["id"] == artifact_id)


def test_lineage_walks_back_to_the_trained_model(run) -> None:
    arts = {a["id"]: a for a in run.report["artifacts"]}
    for a in arts.values():
        node, hops = a, 0
        while node["parent_id"] is not None:
            node, hops = arts[node["parent_id"]], hops + 1
            assert hops < 10
        assert node["stage"] == "train"


def test_rerun_reuses_cached_stages(run, tmp_path: Path) -> None:
    cfg = CompressConfig(dataset="digits", epochs=3, prune_epochs=2, sparsity=0.5, quantization=("ptq-dynamic",),
                         bench=False)
    again = compress(cfg, tmp_path / "again")
    first = {a["name"]: a["id"] for a in run.report["artifacts"]}
    second = {a["name"]: a for a in again.report["artifacts"]}
    assert second["pruned"]["id"] == first["pruned"]
    assert second["pruned"]["metrics"]["stage_seconds"] == by_name(run.report, "pruned")["metrics"]["stage_seconds"]
    assert second["pruned-dynamic-tflite"]["precision"] == "mixed"


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_slice_end_to_end(tmp_path: Path) -> None:
    cfg = CompressConfig(dataset="fashion-mnist", train_limit=4000, test_limit=1000, epochs=2, prune_epochs=1,
                         sparsity=0.8, bench=False)
    result = compress(cfg, tmp_path / "fm")
    report = result.report
    assert report["dataset"]["name"] == "fashion-mnist" and report["dataset"]["test_size"] == 1000
    assert report["dataset"]["train_size"] == 2800  # 10 % of the 4,000 held out to select, 20 % to certify
    base = by_name(report, "baseline")["accuracy"]
    assert base > 0.65  # real data, 2 epochs on 3,600 images; chance is 0.10
    for fmt in ("tflite", "onnx"):
        int8 = by_name(report, f"pruned-int8-{fmt}")
        assert int8["verification"]["top1_agreement"] >= 0.97
        assert int8["bytes"] <= 0.30 * by_name(report, f"baseline-{fmt}")["bytes"]
    assert by_name(report, "pruned")["sparsity"] == pytest.approx(0.8, abs=0.02)
    # 0.8 is an explicit value: honoured, and checked against the default 1 pp budget
    explicit = report["budget"]["explicit"][0]
    assert explicit["what"] == "sparsity" and explicit["value"] == 0.8
    assert report["status"] == ("over_budget" if explicit["drop_pp"] > 1.0 else "ok"), report["problems"]


def test_per_layer_structured_and_per_tensor_int8_through_compress(tmp_path: Path) -> None:
    """--per-layer-structured removes the named layers' filters/units only, fine-tuned by the stage's own schedule
    and distillation weight, and --no-int8-per-channel gives the int8 TFLite file one scale per weight tensor."""
    from edgekit.export.tflite_reader import parse_tflite
    from edgekit.models.files import load_keras_file

    cfg = CompressConfig(dataset="digits", epochs=1, prune_epochs=1, per_layer_structured={"conv2": 0.5},
                         quantization=("ptq-int8",), int8_per_channel=False, bench=False,
                         stage_settings={"structured_prune": {"lr_schedule": "cosine", "distill": 0.3}})
    result = compress(cfg, tmp_path / "run")
    structured = by_name(result.report, "structured")
    assert structured["config"]["per_layer"] == {"conv2": 0.5} and structured["config"]["lr_schedule"] == "cosine"
    model = load_keras_file(result.out / structured["path"])
    filters = {layer.name: getattr(layer, "filters", None) for layer in model.layers}
    assert filters["conv1"] == 32 and filters["conv2"] == 32  # conv2: 64 → 32, conv1 untouched
    int8 = by_name(result.report, "structured-int8-tflite")
    assert int8["metrics"]["per_channel"] is False
    parsed = parse_tflite((result.out / int8["path"]).read_bytes())
    scales = [len(t.quantization.scale) for t in parsed.subgraphs[0].tensors
              if t.dtype == "int8" and t.quantization and parsed.buffer_bytes(t.buffer)]
    assert scales and set(scales) == {1}
