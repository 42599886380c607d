"""The config layer: stage configs own their fields; CompressConfig, recipes and flags share one check path."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from edgekit.compression.prune import MagnitudePruneConfig
from edgekit.config import CompressConfig, flag_owners, make_config
from edgekit.errors import ConfigError, FieldError, UsageError
from edgekit.stages import stages
from edgekit.stages.qat import QatConfig


def test_every_flat_stage_key_has_one_owner_and_followers_agree() -> None:
    fields = {f.name: f for f in dataclasses.fields(CompressConfig)}
    owners = flag_owners()
    assert {"sparsity", "prune_epochs", "qat_epochs", "calibration_samples", "epochs", "structured"} <= set(owners)
    for stage in stages().values():
        for f in dataclasses.fields(stage.config_type):
            key = f.metadata.get("key")
            if key:  # a follower: same default as the field it follows (None there: unset, the stage's own applies)
                assert key in fields, (stage.name, f.name)
                owner = owners.get(key)
                default = owner[1].default if owner else fields[key].default
                assert default is None or f.default == default, (stage.name, f.name)
    for key, (stage, f) in owners.items():
        if key in fields:  # the CompressConfig field copies its default and help from the stage
            assert fields[key].metadata["help"] == f.metadata["help"]
            if key in ("sparsity", "structured"):  # None: not given, so an explicit value can be told apart
                assert getattr(CompressConfig(), key) is None
                continue
            assert getattr(CompressConfig(), key) == getattr(stage.config_type(), f.name)


def test_stage_defaults_apply() -> None:
    cfg = CompressConfig()
    assert cfg.stage_config("quantize.qat") == QatConfig()
    assert cfg.stage_config("prune.magnitude") == MagnitudePruneConfig()


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsity": 5.0}, "--sparsity must be in [0, 1), got 5.0"),
    ({"learning_rate": math.nan}, "--learning-rate must be finite"),
    ({"learning_rate": -1e-3}, "--learning-rate must be in (0, 1)"),
    ({"seed": -1}, "--seed must be in [0, 4294967295]"),
    ({"bench_min_seconds": math.inf}, "--bench-min-seconds must be finite"),
    ({"max_accuracy_drop": math.nan}, "--max-accuracy-drop must be finite"),
    ({"mac_budget": 5.0}, "--mac-budget must be in [0, 1]"),
    ({"per_layer_sparsity": {"conv1": 5.0}}, "--per-layer-sparsity.conv1 must be in [0, 1)"),
    ({"per_layer_structured": {"conv2": 1.0}}, "--per-layer-structured.conv2 must be in [0, 1)"),
    ({"per_layer_structured": {"conv2": 0.5}, "mac_budget": 0.5}, "go with --structured, not with --mac-budget"),
    ({"quantization": ("ptq-int9",)}, "did you mean ptq-int8?"),
    ({"structured_criterion": "l22"}, "did you mean l2?"),
    ({"calibration": "entropi"}, "did you mean entropy?"),
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"seed": "3"}, "--seed: expected an integer"),
    ({"stage_settings": {"qat": {"learning_rate": 2.0}}}, "qat.learning_rate must be in (0, 1)"),
    ({"stage_settings": {"qat": {"epochs": 2}}}, "qat.epochs: is not a setting of this section"),
])
def test_the_python_api_is_checked_in_post_init(kwargs: dict, message: str) -> None:
    with pytest.raises(FieldError) as e:
        CompressConfig(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_python_values_are_coerced() -> None:
    cfg = CompressConfig(quantization=["ptq-int8", "qat"], search_structured=[0, 0.5], targets=["x86-cpu"])  # type: ignore[arg-type]
    assert cfg.quantization == ("ptq-int8", "qat") and cfg.search_structured == (0.0, 0.5) and cfg.targets == ("x86-cpu",)
    assert CompressConfig(epochs=0, model=__file__).epochs == 0  # fine-tuning a given model may skip training


def test_per_layer_structured_and_per_tensor_int8_reach_their_stages() -> None:
    """--per-layer-structured is an explicit pruning value (it replaces the budgeted prune and turns the structured
    stage on); --no-int8-per-channel reaches the int8 stage."""
    from edgekit.stages import stages

    cfg = CompressConfig(per_layer_structured={"conv2": 0.75, "dense1": 0.8}, int8_per_channel=False)
    assert "--per-layer-structured" in cfg.explicit_pruning()
    structured = cfg.stage_config("prune.structured")
    assert structured.per_layer == {"conv2": 0.75, "dense1": 0.8} and structured.ratio == 0.0
    prune = stages()["prune.structured"].prune
    assert prune is not None and prune.active(structured)
    assert not cfg.stage_config("prune.budgeted").enabled
    assert cfg.stage_config("quantize.ptq_int8").per_channel is False
    assert CompressConfig().stage_config("quantize.ptq_int8").per_channel is True


def test_stage_configs_check_themselves() -> None:
    with pytest.raises(UsageError, match="sparsity must be in"):
        MagnitudePruneConfig(sparsity=1.0)
    with pytest.raises(UsageError, match="epochs must be at least 1"):
        QatConfig(epochs=0)


@pytest.mark.parametrize("key, value, message", [
    ("quantization", ["bogus"], "did you mean ptq-int8?"),
    ("seed", -1, "--seed must be in [0, 4294967295]"),
    ("qat_epochs", -3, "--qat-epochs must be at least 1"),
    ("image_size", 0, "--image-size must be at least 1"),
    ("per_layer_sparsity", {"conv1": 5.0}, "--per-layer-sparsity.conv1 must be in [0, 1)"),
    ("per_layer_structured", {"conv1": -0.5}, "--per-layer-structured.conv1 must be in [0, 1)"),
    ("int8_per_channel", "maybe", "expected true or false, got 'maybe'"),
    ("prune_schedule", "bogus", "not one of polynomial, constant"),
    ("learning_rate", math.nan, "--learning-rate must be finite"),
    ("learning_rate", -0.5, "--learning-rate must be in (0, 1)"),
    ("max_accuracy_drop", math.nan, "--max-accuracy-drop must be finite"),
    ("bench_min_seconds", math.inf, "--bench-min-seconds must be finite"),
    ("bench_min_seconds", math.nan, "--bench-min-seconds must be finite"),
    ("mac_budget", 5.0, "--mac-budget must be in [0, 1]"),
    ("structured_criterion", "bogus", "not one of l1, l2, bn_scale"),
    ("calibration", "bogus", "not one of minmax, entropy, percentile"),
])
def test_flags_and_recipe_keys_take_one_path(tmp_path: Path, key: str, value: object, message: str) -> None:
    with pytest.raises(UsageError) as flag_error:
        make_config(overrides={key: value})
    assert message in str(flag_error.value)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({key: value}))  # YAML writes .nan / .inf
    with pytest.raises(UsageError) as recipe_error:
        make_config(recipe)
    assert str(recipe) in str(recipe_error.value) and (message in str(recipe_error.value))


@pytest.mark.parametrize("text, message", [
    ("prune: {sparsity: 1.5}\n", "--sparsity must be in [0, 1), got 1.5"),
    ("prune: {batch_size: 8}\n", "set it with the top-level key 'batch_size'"),
    ("prune: {sparsityy: 0.5}\n", "unknown key 'sparsityy'; did you mean sparsity?"),
    ("qat: {learning_rate: 5}\n", "qat.learning_rate must be in (0, 1), got 5.0"),
    ("prune: 0.5\n", "expected a table of prune.magnitude settings"),
    ("quantisation: [qat]\n", "unknown key 'quantisation'; did you mean quantization?"),
    ("export_onnx: {opset: 3}\n", "export_onnx.opset must be at least 13"),
])
def test_nested_recipe_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(ConfigError) as e:
        make_config(recipe)
    assert message in str(e.value) and str(recipe) in str(e.value)


def test_a_section_flag_lands_in_its_stage() -> None:
    cfg = make_config(overrides={"prune_epochs": 2, "sparsity": 0.5})
    assert cfg.stage_config("prune.magnitude").epochs == cfg.stage_config("prune.structured").epochs == 2


# ---- --cache-dir: one config field, honoured by compress, tune and the fan-out's workers

def test_cache_dir_must_be_a_usable_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgekit.cli import main

    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad, problem in ((a_file, "is not a folder"), (a_file / "sub", "is a file, not a folder")):
        with pytest.raises(FieldError, match=f"--cache-dir: .*{problem}"):
            CompressConfig(cache_dir=str(bad))
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump({"cache_dir": str(bad)}))
        with pytest.raises(ConfigError, match=f"{recipe}: --cache-dir: .*{problem}"):
            make_config(recipe)
        for command in ("compress", "tune"):
            out = tmp_path / f"out-{command}"
            assert main(["-q", command, "--dataset", "digits", "--cache-dir", str(bad), "--out", str(out)]) == 2
            err = capsys.readouterr().err.strip()
            assert err.startswith("edgekit: error: --cache-dir") and problem in err and "\n" not in err
            assert not out.exists()
    with pytest.raises(FieldError, match="--cache-dir must name a folder"):
        CompressConfig(cache_dir="")
    assert CompressConfig(cache_dir=str(tmp_path / "new" / "cache")).cache_dir == str(tmp_path / "new" / "cache")
    assert not (tmp_path / "new").exists()  # checked, not created, until a run uses it


def test_cache_dir_is_what_the_cache_the_executor_and_workers_read(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.cache import ArtifactCache, using_cache_dir
    from edgekit.executor import _worker_env, cache_root

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "env"))
    with using_cache_dir(str(tmp_path / "shared")):
        assert cache_root() == tmp_path / "shared" and ArtifactCache().root == tmp_path / "shared" / "artifacts"
        assert _worker_env()["EDGEKIT_CACHE_DIR"] == str(tmp_path / "shared")  # what every Ray worker gets
    assert cache_root() == tmp_path / "env"  # restored after the run
    with using_cache_dir(None):
        assert cache_root() == tmp_path / "env"


@pytest.mark.slow
def test_compress_caches_into_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from edgekit.cli import main

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "env-cache"))
    shared = tmp_path / "shared-cache"
    assert main(["-q", "compress", "--dataset", "digits", "--epochs", "1", "--train-limit", "300", "--test-limit", "100",
                 "--sparsity", "0", "--quantization", "ptq-float16", "--no-bench", "--cache-dir", str(shared),
                 "--out", str(tmp_path / "run")]) == 0
    ids = [a["id"] for a in json.loads((tmp_path / "run" / "report.json").read_text())["artifacts"]]
    assert ids and all((shared / "artifacts" / i / "SHA256SUMS").is_file() for i in ids)
    assert not (tmp_path / "env-cache").exists() and os.environ["EDGEKIT_CACHE_DIR"] == str(tmp_path / "env-cache")
