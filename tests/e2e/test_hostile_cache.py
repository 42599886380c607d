"""The artifact cache checks itself: cross-device puts, damaged entries dropped."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import pytest

from edgekit.artifact import ARTIFACT_JSON, Artifact
from edgekit.cache import SUMS, ArtifactCache
from edgekit.fsutil import move_dir

SHM = Path("/dev/shm")


def _staged(tmp: Path, a_id: str, payload: bytes = b"\x08model bytes" * 50) -> tuple[Artifact, Path]:
    staged = tmp / "work" / a_id
    staged.mkdir(parents=True)
    (staged / "model.onnx").write_bytes(payload)
    return Artifact(a_id, "export.onnx", "onnx", "fp32", staged / "model.onnx", None, {"k": 1}, {}), staged


def _put(cache: ArtifactCache, tmp: Path, a_id: str = "abc123def456") -> Artifact:
    artifact, staged = _staged(tmp, a_id)
    return cache.put(artifact, staged)


def test_round_trip(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    stored = _put(cache, tmp_path)
    got = cache.get(stored.id)
    assert got is not None and got.path == stored.path and got.path.read_bytes() == stored.path.read_bytes()
    assert (tmp_path / "cache" / stored.id / SUMS).is_file()


@pytest.fixture
def shm_dir() -> Path:
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(Path.cwd()).st_dev:
        pytest.skip("needs /dev/shm on another filesystem")
    d = SHM / f"edgekit-test-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_put_across_filesystems(tmp_path: Path, shm_dir: Path) -> None:
    """A put across filesystems copies and renames (os.replace alone raises EXDEV across devices)."""
    assert os.stat(shm_dir).st_dev != os.stat(tmp_path).st_dev
    cache = ArtifactCache(shm_dir / "cache")
    stored = _put(cache, tmp_path)
    assert cache.get(stored.id) is not None
    assert not (tmp_path / "work" / stored.id).exists()
    assert [p.name for p in (shm_dir / "cache").iterdir()] == [stored.id]  # no temporary copy left


def test_move_dir_refuses_existing_target(tmp_path: Path, shm_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    dst = shm_dir / "dst"
    dst.mkdir()
    (dst / "g").write_text("y")
    with pytest.raises(FileExistsError):
        move_dir(src, dst)
    assert (src / "f").read_text() == "x" and (dst / "g").read_text() == "y"


def _damage_flip(folder: Path) -> None:
    model = folder / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))


def _damage_missing(folder: Path) -> None:
    (folder / "model.onnx").unlink()


def _damage_truncate(folder: Path) -> None:
    record = folder / ARTIFACT_JSON
    record.write_bytes(record.read_bytes()[:40])


def _damage_no_sums(folder: Path) -> None:  # an entry from an older edgekit
    (folder / SUMS).unlink()


def _damage_sums_garbage(folder: Path) -> None:
    (folder / SUMS).write_bytes(b"\xff\xfe garbage")


@pytest.mark.parametrize("damage", [_damage_flip, _damage_missing, _damage_truncate, _damage_no_sums, _damage_sums_garbage])
def test_damaged_entry_is_dropped_and_recomputed(tmp_path: Path, damage, caplog: pytest.LogCaptureFixture) -> None:
    """Flipped bytes, a missing model file, a truncated artifact.json are never reused."""
    cache = ArtifactCache(tmp_path / "cache")
    a_id = f"e{uuid.uuid4().hex[:11]}"
    stored = _put(cache, tmp_path, a_id)
    damage(tmp_path / "cache" / a_id)
    with caplog.at_level(logging.WARNING, logger="edgekit.cache"):
        assert cache.get(a_id) is None
        assert cache.get(a_id) is None
    assert not (tmp_path / "cache" / a_id).exists()
    assert len([r for r in caplog.records if a_id in r.getMessage()]) == 1  # logged once
    # the stage runs again and its output is stored afresh
    again = _put(cache, tmp_path / "second", a_id)
    assert again.path == stored.path and cache.get(a_id) is not None


def test_put_replaces_a_damaged_entry(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    a_id = "f00dfeed0001"
    _put(cache, tmp_path, a_id)
    _damage_flip(tmp_path / "cache" / a_id)
    _put(cache, tmp_path / "second", a_id)
    assert cache.get(a_id) is not None


def test_a_side_file_is_summed_and_a_damaged_one_drops_the_entry(tmp_path: Path) -> None:
    """A stage's side file (the budgeted prune's lighter.keras) is checked like the model: damaged, the entry goes."""
    cache = ArtifactCache(tmp_path / "cache")
    artifact, staged = _staged(tmp_path, "5ide5ide5ide")
    (staged / "lighter.keras").write_bytes(b"runner-up")
    stored = cache.put(artifact, staged)
    assert "lighter.keras" in (stored.path.parent / SUMS).read_text()
    assert cache.get(stored.id) is not None
    (stored.path.parent / "lighter.keras").write_bytes(b"tampered")
    assert cache.get(stored.id) is None
