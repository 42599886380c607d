"""edgekit tune's output folder and options follow compress's rules; every refusal comes before any data, Ray or
training: one line on stderr naming the flag, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgekit
from edgekit.cli import main
from edgekit.errors import FieldError, UsageError
from edgekit.rundir import OutLock
from edgekit.tuning import TuneOptions


def _tune(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["-q", "tune", "--dataset", "digits", "--trials", "1", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """A folder of the user's that is not an edgekit run."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    return folder


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_that_is_not_a_run_is_never_replaced(capsys: pytest.CaptureFixture[str], user_folder: Path,
                                                      force: bool) -> None:
    before = _tree(user_folder)
    code, err = _tune(capsys, "--out", str(user_folder), *(["--force"] if force else []))
    assert code == 2 and len(err.splitlines()) == 1 and str(user_folder) in err
    assert ("not an edgekit run folder" if force else "already exists") in err
    assert _tree(user_folder) == before and not _leftovers(user_folder.parent, user_folder.name)


def test_an_existing_run_needs_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "tuned"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"report_version": 1}))
    (run / "recipe.yaml").write_text("epochs: 3\n")
    before = _tree(run)
    code, err = _tune(capsys, "--out", str(run))
    assert code == 2 and "already exists" in err and "--force" in err
    assert _tree(run) == before


def test_an_out_that_is_a_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("mine\n")
    for args in (["--out", str(target)], ["--out", str(target), "--force"], ["--out", str(target / "sub")]):
        code, err = _tune(capsys, *args)
        assert code == 2 and len(err.splitlines()) == 1 and str(target) in err, args
    assert target.read_text() == "mine\n"


def test_force_never_replaces_a_run_holding_an_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "tuned"
    run.mkdir()
    (run / "report.json").write_text("{}")
    space = run / "space.yaml"
    space.write_text("epochs: 1\n")
    code, err = _tune(capsys, "--space", str(space), "--out", str(run), "--force")
    assert code == 2 and "an input of this run" in err and space.read_text() == "epochs: 1\n"


def test_a_concurrent_run_on_the_same_out_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    with OutLock(out):  # another edgekit run writing it
        code, err = _tune(capsys, "--out", str(out))
    assert code == 2 and "another edgekit run" in err and not out.exists()


def test_a_run_that_fails_leaves_nothing_and_keeps_the_old_run(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    """It fails after taking the lock (no images in --data-dir): the old run stays, no partial folder or lock."""
    empty = tmp_path / "images"
    empty.mkdir()
    run = tmp_path / "tuned"
    run.mkdir()
    (run / "report.json").write_text("{}")
    before = _tree(run)
    code, err = main(["-q", "tune", "--data-dir", str(empty), "--out", str(run), "--force"]), capsys.readouterr().err
    assert code == 2 and str(empty) in err
    assert _tree(run) == before and not _leftovers(tmp_path, "tuned")
    code, _ = main(["-q", "tune", "--data-dir", str(empty), "--out", str(tmp_path / "new")]), capsys.readouterr()
    assert code == 2 and not (tmp_path / "new").exists() and not _leftovers(tmp_path, "new")


@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "--trials must be at least 1, got 0"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--grace-period", "0"], "--grace-period must be at least 1, got 0"),
    (["--ray-address", "no-port"], "--ray-address must be HOST:PORT"),
    (["--learning-rate", "2"], "--learning-rate must be in (0, 1)"),
    (["--color", "rbg"], "did you mean rgb?"),
    (["--trials", "many"], "argument --trials: invalid int value"),
    (["--space", "missing.yaml"], "--space missing.yaml: cannot read"),
])
def test_bad_options_name_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                                   message: str) -> None:
    out = tmp_path / "tuned"
    try:
        code, err = _tune(capsys, *args, "--out", str(out))
    except SystemExit as e:  # argparse's own errors exit from parse_args
        code, err = int(e.code or 0), capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists() and not _leftovers(tmp_path, "tuned")


@pytest.mark.parametrize("text, message", [
    ("".join(f"k{i}: &k{i} [{', '.join([f'*k{i - 1}'] * 9) if i else '1'}]\n" for i in range(6)), "alias bomb"),
    ("learning_rat: [0.1]\n", "did you mean learning_rate?"),
    ("epochs: [1\n", "not valid YAML"),
])
def test_a_bad_space_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(text)
    code, err = _tune(capsys, "--space", str(space), "--out", str(tmp_path / "tuned"))
    assert code == 2 and message in err and str(space) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "tuned").exists()


def test_the_python_api_takes_the_same_checks(tmp_path: Path) -> None:
    with pytest.raises(FieldError, match="--trials must be at least 1"):
        edgekit.tune(out=tmp_path / "a", trials=0)
    with pytest.raises(FieldError, match="--workers must be at least 1"):
        TuneOptions(workers=0)
    with pytest.raises(UsageError, match="unknown setting 'trails'; did you mean trials?"):
        edgekit.tune(out=tmp_path / "a", trails=3)
    with pytest.raises(FieldError, match="--grace-period: expected an integer"):
        TuneOptions(grace_period="2")  # type: ignore[arg-type]
    assert not (tmp_path / "a").exists()


def test_tune_shares_compress_flags() -> None:
    """The data, model, training and cache flags are compress's: same names, help, metavar and choices."""
    from edgekit.cli import build_parser
    from edgekit.commands.tune import CONFIG_KEYS

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    tune, compress = sub.choices["tune"], sub.choices["compress"]  # type: ignore[union-attr]

    def flags(p: object, keys: set[str]) -> dict[str, tuple]:
        return {a.dest: (tuple(a.option_strings), a.help, a.metavar, a.default, a.const)
                for a in p._actions if a.dest in keys}  # type: ignore[attr-defined]

    shared = flags(tune, set(CONFIG_KEYS))
    assert set(shared) == set(CONFIG_KEYS) and shared == flags(compress, set(CONFIG_KEYS))
    assert all(a.default is None for a in tune._actions if a.dest in CONFIG_KEYS)  # a --recipe value stands
    own = {a.dest for a in tune._actions} - set(CONFIG_KEYS)
    assert {"trials", "space", "grace_period", "ray_address", "workers", "out", "force", "recipe"} <= own
