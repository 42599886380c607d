"""build_plan from the stage registry: step names, configs, fan-out, search grid, recipes (fast: nothing trains)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.config import CompressConfig, make_config
from edgekit.plan import build_plan
from edgekit.schema import Checked, option, to_mapping
from edgekit.stages import Emit, StageOutput, parity_stages, quant_modes, register_stage, remove_stage


def names(cfg: CompressConfig) -> list[str]:
    return [s.name for s in build_plan(cfg)]


def test_default_plan_steps_and_configs() -> None:
    plan = build_plan(CompressConfig(), dataset_fingerprint="fp", model_sha256="")
    assert [(s.name, s.stage, s.input, s.role) for s in plan] == [
        ("baseline", "train", None, "baseline"),
        ("baseline-tflite", "export.tflite", "baseline", "baseline"),
        ("baseline-onnx", "export.onnx", "baseline", "baseline"),
        ("pruned", "prune.budgeted", "baseline", ""),  # the default pruning is budgeted, under the familiar name
        ("pruned-tflite", "export.tflite", "pruned", ""),
        ("pruned-onnx", "export.onnx", "pruned", ""),
        # the search's runner-up, which certification falls back to when the boldest held choice fails
        ("pruned-lighter", "prune.lighter", "pruned", ""),
        ("pruned-lighter-tflite", "export.tflite", "pruned-lighter", ""),
        ("pruned-lighter-onnx", "export.onnx", "pruned-lighter", ""),
        ("pruned-int8-tflite", "quantize.ptq_int8", "pruned", ""),
        ("pruned-int8-onnx", "quantize.ptq_int8", "pruned-onnx", ""),
        ("pruned-float16-tflite", "quantize.ptq_float16", "pruned", ""),
        ("pruned-lighter-int8-tflite", "quantize.ptq_int8", "pruned-lighter", ""),
        ("pruned-lighter-int8-onnx", "quantize.ptq_int8", "pruned-lighter-onnx", ""),
        ("pruned-lighter-float16-tflite", "quantize.ptq_float16", "pruned-lighter", ""),
        ("baseline-int8-tflite", "quantize.ptq_int8", "baseline", ""),  # trains nothing: certifiable unlabelled
        ("baseline-int8-onnx", "quantize.ptq_int8", "baseline-onnx", ""),
        ("baseline-float16-tflite", "quantize.ptq_float16", "baseline", ""),
    ]
    configs = {s.name: to_mapping(s.config) for s in plan}  # what the artifact ids hash: must not drift
    assert configs["baseline"] == {"epochs": 5, "batch_size": 64, "learning_rate": 1e-3, "augment": False, "model": "",
                                   "model_sha256": "", "trust_model": False, "dataset": "fp", "seed": 0,
                                   # the training settings edgekit tune searches, at the reference defaults
                                   "lr_schedule": "constant", "warmup_epochs": 0, "label_smoothing": 0.0,
                                   "weight_decay": 0.0, "augment_strength": 1.0, "freeze_layers": 0}
    assert configs["pruned"] == {"enabled": True, "budget_pp": 1.0, "structured": True, "calibration_samples": 256,
                                 "max_attempts": 4, "epochs": 3, "batch_size": 64, "learning_rate": 1e-3,
                                 "lighter": True}
    assert configs["pruned-lighter"] == {}
    assert configs["baseline-tflite"] == {"sparse_encoding": True} and configs["baseline-onnx"] == {"opset": 17}
    int8 = configs["pruned-int8-onnx"]
    assert int8 == configs["pruned-int8-tflite"]
    assert (int8["calibration_samples"], int8["int8_io"], int8["onnx"]["calibration"],
            int8["onnx"]["calibration_samples"], int8["onnx"]["per_channel"], int8["budget_pp"]) == (
        500, False, "minmax", 500, True, 1.0)


def test_an_explicit_pruning_value_replaces_the_budgeted_prune() -> None:
    for given in ({"sparsity": 0.8}, {"structured": 0.25}, {"mac_budget": 0.5}, {"sparsity_pattern": "2:4"},
                  {"per_layer_sparsity": {"dense": 0.5}}, {"sparsity": 0.0}):
        stages = [s.stage for s in build_plan(CompressConfig(**given))]  # type: ignore[arg-type]
        assert "prune.budgeted" not in stages, given
    assert "prune.magnitude" not in [s.stage for s in build_plan(CompressConfig(structured=0.5))]  # no blind 80 %
    off = make_config(overrides={"budgeted_prune": False})
    assert [s.name for s in build_plan(off)][3:] == ["baseline-int8-tflite", "baseline-int8-onnx",
                                                     "baseline-float16-tflite"]
    assert CompressConfig(max_accuracy_drop=0.3).stage_config("prune.budgeted").budget_pp == 0.3


def test_every_mode_fans_out_with_its_declared_step_names() -> None:
    cfg = CompressConfig(structured=0.5, sparsity=0.5,
                         quantization=("ptq-int8", "ptq-float16", "ptq-dynamic", "qat", "pqat"))
    plan = {s.name: s for s in build_plan(cfg)}
    assert list(plan)[3:7] == ["structured", "structured-pruned", "structured-pruned-tflite", "structured-pruned-onnx"]
    p = "structured-pruned"
    assert {n for n in plan if n.startswith(f"{p}-") and n not in (f"{p}-tflite", f"{p}-onnx")} == {
        f"{p}-int8-tflite", f"{p}-int8-onnx", f"{p}-float16-tflite", f"{p}-dynamic-tflite",
        f"{p}-qat-tflite", f"{p}-qat-onnx", f"{p}-pqat-tflite", f"{p}-pqat-onnx"}
    assert plan[f"{p}-qat-onnx"].stage == "export.onnx" and plan[f"{p}-qat-onnx"].input == f"{p}-qat-tflite"
    assert plan[f"{p}-int8-onnx"].input == f"{p}-onnx" and plan[f"{p}-int8-tflite"].input == p
    assert plan[f"{p}-qat-tflite"].config.epochs == 1 and plan[f"{p}-qat-tflite"].config.learning_rate == 1e-4


def test_flat_settings_reach_every_stage_that_shares_them() -> None:
    cfg = CompressConfig(structured=0.5, sparsity=0.8, batch_size=32, prune_epochs=2, quantization=("qat",),
                         calibration_samples=100)
    plan = {s.name: s.config for s in build_plan(cfg)}
    shared = ("baseline", "structured", "structured-pruned", "structured-pruned-qat-tflite")
    assert {plan[n].batch_size for n in shared} == {32}
    assert plan["structured"].epochs == plan["structured-pruned"].epochs == 2
    assert plan["structured-pruned-qat-tflite"].calibration_samples == 100


def test_search_grid_merges_shared_steps() -> None:
    cfg = CompressConfig(search=True, search_structured=(0.0, 0.5), search_sparsity=(0.0, 0.8),
                         search_quantization=("ptq-int8", "ptq-dynamic"))
    got = names(cfg)
    assert len(got) == len(set(got))
    assert {"baseline-int8-onnx", "baseline-dynamic-tflite", "pruned80", "pruned80-int8-onnx", "structured50",
            "structured50-pruned80-dynamic-tflite", "structured50-int8-tflite"} <= set(got)
    assert not any(n.startswith(("structured0", "pruned0")) for n in got)
    default_grid = names(CompressConfig(search=True))
    assert "structured25" not in names(CompressConfig(max_accuracy_drop=0.5))  # the budget alone starts no grid
    assert "structured25-pruned80-float16-tflite" in default_grid and not any("qat" in n for n in default_grid)


def test_nested_and_flat_recipes_are_the_same_config(tmp_path: Path) -> None:
    nested, flat = tmp_path / "nested.yaml", tmp_path / "flat.yaml"
    nested.write_text("prune: {sparsity: 0.5, epochs: 2, schedule: constant}\nstructured_prune: {ratio: 0.25}\n"
                      "qat: {learning_rate: 5.0e-5, epochs: 2}\nquantization: [ptq-int8, qat]\n")
    flat.write_text("sparsity: 0.5\nprune_epochs: 2\nprune_schedule: constant\nstructured: 0.25\nqat_epochs: 2\n"
                    "quantization: [ptq-int8, qat]\n")
    a, b = make_config(nested), make_config(flat)
    assert a.replace(stage_settings={}) == b
    assert a.stage_settings == {"qat": {"learning_rate": 5e-5}}
    plan_a, plan_b = build_plan(a), build_plan(b)
    assert [s.name for s in plan_a] == [s.name for s in plan_b]
    qat = next(s.config for s in plan_a if s.stage == "quantize.qat")
    assert (qat.learning_rate, qat.epochs) == (5e-5, 2)


def test_modes_and_parity_come_from_the_registry() -> None:
    modes = {m: s.name for m, s in quant_modes().items()}
    assert modes.items() >= {"ptq-int8": "quantize.ptq_int8", "ptq-float16": "quantize.ptq_float16",
                             "ptq-dynamic": "quantize.ptq_dynamic", "qat": "quantize.qat",
                             "pqat": "quantize.pqat"}.items()
    assert list(modes)[0] == "ptq-int8"  # the default first (help, choices, suggestions)
    assert parity_stages() >= {"export.tflite", "export.onnx", "quantize.ptq_int8", "quantize.ptq_float16",
                               "quantize.ptq_dynamic"}
    assert not parity_stages() & {"train", "prune.magnitude", "prune.structured", "quantize.qat", "quantize.pqat"}
    assert CompressConfig().quantization == ("ptq-int8", "ptq-float16")
    assert CompressConfig().search_quantization == tuple(m for m, s in quant_modes().items() if s.search)
    assert {"ptq-int8", "ptq-float16", "ptq-dynamic"} <= set(CompressConfig().search_quantization)


# An example quantizer, registered from the test suite alone: one config, one decorated function.
@dataclass(frozen=True)
class Int4Config(Checked):
    """Settings of the example mode."""

    bits: int = option(4, help="weight bits", ge=2, le=8, flag="example_bits")
    group_size: int = option(32, help="weights per scale", ge=1)


def run_int4(parent, cfg, ctx, out) -> StageOutput:  # type: ignore[no-untyped-def]  # never run here
    raise AssertionError("planning must not run a stage")


@pytest.fixture
def example_mode() -> Iterator[str]:
    register_stage("quantize.example_int4", Int4Config, consumes={"keras": "tflite"}, precision="mixed", parity=True,
                   mode="example-int4",
                   steps=(Emit("int4-tflite"), Emit("int4-onnx", input="previous", stage="export.onnx")),
                   description="example: int4 weights")(run_int4)
    yield "example-int4"
    remove_stage("quantize.example_int4")


def test_a_mode_registered_in_a_test_plans_with_no_edits_elsewhere(example_mode: str, tmp_path: Path) -> None:
    plan = {s.name: s for s in build_plan(CompressConfig(sparsity=0.0, quantization=("ptq-int8", example_mode)))}
    assert plan["baseline-int4-tflite"].stage == "quantize.example_int4"
    assert plan["baseline-int4-tflite"].config == Int4Config()
    assert plan["baseline-int4-onnx"].input == "baseline-int4-tflite"
    assert "quantize.example_int4" in parity_stages() and example_mode in quant_modes()
    # its settings: the flag it declares, or its recipe section
    assert make_config(overrides={"example_bits": 3}).stage_config("quantize.example_int4").bits == 3
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"quantization: [{example_mode}]\nexample_int4: {{group_size: 64}}\n")
    step = next(s for s in build_plan(make_config(recipe)) if s.name == "pruned-int4-tflite")
    assert step.config == Int4Config(group_size=64)
    with pytest.raises(Exception, match="example_bits|--example-bits"):
        make_config(overrides={"example_bits": 9})


def test_the_example_mode_is_in_the_cli(example_mode: str) -> None:
    from edgekit.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["compress"].format_help()  # type: ignore[union-attr]
    assert example_mode in help_text and "--example-bits" in help_text and "example: int4 weights" in help_text


def test_planning_imports_no_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom edgekit.config import CompressConfig\nfrom edgekit.plan import build_plan\n"
            "build_plan(CompressConfig(structured=0.5, quantization=('ptq-int8', 'qat'), search=True))\n"
            "assert 'tensorflow' not in sys.modules and 'onnxruntime' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_a_mode_name_is_written_in_its_own_module_only() -> None:
    import inspect
    import re

    package = Path(inspect.getsourcefile(CompressConfig) or "").parent  # type: ignore[arg-type]
    sources = {p: p.read_text() for p in package.rglob("*.py")}
    for mode, stage in quant_modes().items():
        quoted = re.compile(r"[\"']" + re.escape(mode) + r"[\"'-]")
        own = Path(inspect.getsourcefile(stage.run))  # type: ignore[arg-type]
        assert [p for p, text in sources.items() if quoted.search(text)] == [own], mode


def test_an_artifact_id_names_the_code_that_makes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same parent, stage and config under changed source code is another artifact: a cache filled by older
    code (same version string, another commit) is not reused."""
    from edgekit import artifact

    before = artifact.artifact_id("p", "prune.magnitude", {"sparsity": 0.5})
    assert before == artifact.artifact_id("p", "prune.magnitude", {"sparsity": 0.5})
    assert len(artifact.code_fingerprint()) == 16
    monkeypatch.setattr(artifact, "code_fingerprint", lambda: "0" * 16)
    assert artifact.artifact_id("p", "prune.magnitude", {"sparsity": 0.5}) != before


def test_a_recipe_turns_the_lighter_fallback_off(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("prune_budget: {lighter: false}\n")
    names_off = [s.name for s in build_plan(make_config(recipe))]
    assert "pruned" in names_off and not [n for n in names_off if "lighter" in n]
    assert "pruned-lighter-float16-tflite" in names(CompressConfig())
    assert "pruned-lighter" not in names(CompressConfig(sparsity=0.5))  # an explicit value has no runner-up


def test_the_smallest_goal_fine_tunes_the_budgeted_search_longer_with_per_tensor_int8() -> None:
    from edgekit.goals import GOALS

    cfg = CompressConfig(goal="smallest")
    assert names(cfg) == names(CompressConfig())  # the same steps: the budget's own per-layer search
    plan = {s.name: s.config for s in build_plan(cfg)}
    assert (plan["pruned"].epochs, plan["pruned"].max_attempts) == (10, 6)
    assert plan["pruned-int8-tflite"].per_channel is False and plan["baseline-int8-tflite"].per_channel is False
    assert CompressConfig(goal="default") == CompressConfig() and GOALS["default"] == {}


def test_a_goal_fills_only_what_the_run_leaves_at_its_default(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("goal: smallest\nprune_budget: {lighter: false}\n")
    cfg = make_config(recipe, {"prune_epochs": 4})
    pruned = cfg.stage_config("prune.budgeted")
    assert (pruned.epochs, pruned.max_attempts, pruned.lighter) == (4, 6, False)  # flag, goal, recipe
    assert cfg.int8_per_channel is False
    assert make_config(None, {"goal": "smallest"}) == CompressConfig(goal="smallest")  # flags = Python API


def test_an_unknown_goal_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from edgekit.cli import main

    assert main(["-q", "compress", "--goal", "smalest", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--goal" in err[0] and "smallest" in err[0]
