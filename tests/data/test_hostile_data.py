"""Bad data is refused up front with one DataError naming the file and field."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from edgekit.data.datasets import MAX_CLASSES, RawSplits, load_dataset, prepare
from edgekit.errors import DataError


def _splits(**change: object) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (40, 8, 8), dtype=np.uint8),
        "y_train": np.arange(40) % 4,
        "x_test": rng.integers(0, 256, (12, 8, 8), dtype=np.uint8),
        "y_test": np.arange(12) % 4,
    }
    arrays.update(change)  # type: ignore[arg-type]
    return arrays


def _npz(tmp_path: Path, **change: object) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, **_splits(**change))
    return path


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(DataError) as e:
        load_dataset(data_dir=path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg
    return msg


def test_good_data_loads(tmp_path: Path) -> None:
    ds = load_dataset(data_dir=_npz(tmp_path))
    assert ds.num_classes == 4 and ds.x_train.max() <= 1.0


def _float_train_with_inf() -> np.ndarray:
    x = np.random.default_rng(1).random((40, 8, 8)).astype(np.float32)
    x[3, 2, 2] = np.inf
    return x


def _float_with_nan(n: int) -> np.ndarray:
    x = np.random.default_rng(2).random((n, 8, 8)).astype(np.float32)
    x[0, 0, 0] = np.nan
    return x


@pytest.mark.parametrize(("change", "words"), [
    ({"x_train": _float_train_with_inf()}, ("train images", "infinite")),
    ({"x_train": _float_with_nan(40)}, ("train images", "NaN")),
    ({"x_test": _float_with_nan(12)}, ("test images", "NaN")),
    ({"y_train": np.zeros(40, np.int64)}, ("one class",)),
    ({"y_test": np.array([-1] + [0] * 11)}, ("test labels", "negative")),
    ({"y_train": np.arange(40) % 4 + 0.5}, ("train labels", "whole numbers")),
    ({"y_train": np.array([10**9] + [0, 1] * 19 + [1])}, ("train labels", "too large")),
    ({"y_test": np.array([2**62] + [0] * 11)}, ("test labels", "too large")),
    ({"y_train": np.array(["a"] * 40)}, ("labels must be integers",)),
    ({"x_train": np.full((40, 8, 8), 300.0, np.float32)}, ("pixel values",)),
    ({"x_train": np.full((40, 8, 8), -1.0, np.float32)}, ("pixel values",)),
    ({"y_train": np.arange(39) % 4}, ("40 images but 39 labels",)),
])
def test_bad_npz_refused(tmp_path: Path, change: dict[str, np.ndarray], words: tuple[str, ...]) -> None:
    _refused(_npz(tmp_path, **change), *words)


def test_huge_label_without_names_does_not_allocate(tmp_path: Path) -> None:
    """A label of 10**9 and no labels array is refused before 10**9 label strings are built (OOM)."""
    y = np.arange(40) % 4
    y[5] = 10**9
    _refused(_npz(tmp_path, y_train=y), "too large", str(MAX_CLASSES))


def test_too_many_label_names(tmp_path: Path) -> None:
    _refused(_npz(tmp_path, labels=np.array([f"c{i}" for i in range(MAX_CLASSES + 1)])), "labels")


def test_float_labels_that_are_whole_numbers_are_fine(tmp_path: Path) -> None:
    ds = load_dataset(data_dir=_npz(tmp_path, y_train=(np.arange(40) % 4).astype(np.float32)))
    assert ds.y_train.dtype == np.int64


def test_same_scaling_for_both_splits() -> None:
    """One scaling decision for both splits: a [0, 255] train split and a test split that happens to stay
    below 1 are both divided by 255 (one split is never scaled alone, e.g. because of an inf pixel)."""
    x_train = np.full((20, 4, 4), 200.0, np.float32)
    x_test = np.full((5, 4, 4), 0.5, np.float32)
    raw = RawSplits(x_train, np.arange(20) % 2, x_test, np.arange(5) % 2, (), "mem")
    ds = prepare(raw, "mem")
    assert np.allclose(ds.x_test, 0.5 / 255) and np.allclose(ds.x_train, 200 / 255)


def test_single_class_after_train_limit(tmp_path: Path) -> None:
    path = _npz(tmp_path, y_train=np.array([0] * 20 + [1] * 20))
    with pytest.raises(DataError, match="one class"):
        load_dataset(data_dir=path, train_limit=15)


def test_png_decompression_bomb(tmp_path: Path) -> None:
    """A small PNG that declares a huge canvas is refused by name, not decoded."""
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(6):
            Image.new("L", (8, 8), color=i * 20).save(tmp_path / c / f"{i}.png")
    Image.new("1", (10000, 10000)).save(tmp_path / "a" / "bomb.png")  # 10^8 pixels in a few KB
    assert (tmp_path / "a" / "bomb.png").stat().st_size < 100_000
    _refused(tmp_path, "bomb.png", "pixels")


def test_gzip_idx_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgekit.data.idx as idx

    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1 << 20)
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 8 << 20)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + bytes(8 << 20)))
    with pytest.raises(DataError, match="decompresses to more than"):
        idx.read_idx(tmp_path / "train-labels-idx1-ubyte.gz")


def test_labels_txt_not_utf8(tmp_path: Path) -> None:
    def idx_file(name: str, arr: np.ndarray) -> None:
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
        (tmp_path / name).write_bytes(header + arr.astype(np.uint8).tobytes())

    s = _splits()
    idx_file("train-images-idx3-ubyte", s["x_train"])
    idx_file("train-labels-idx1-ubyte", s["y_train"])
    idx_file("t10k-images-idx3-ubyte", s["x_test"])
    idx_file("t10k-labels-idx1-ubyte", s["y_test"])
    (tmp_path / "labels.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="labels.txt: not UTF-8"):
        load_dataset(data_dir=tmp_path)


def _image_folder(root: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 8) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize("name", ["two\nlines", "cr\rhere", "tab\there", "sep\u2028x"])
def test_class_name_with_a_line_break_is_refused(tmp_path: Path, name: str) -> None:
    """Labels are stored one a line (.tflite labels file, C array): a line break would shift every later label."""
    folder = _image_folder(tmp_path / "imgs", ("a", name))
    msg = _refused(folder, "class name", "line break")
    assert repr(name)[1:-1] in msg
    with pytest.raises(DataError, match="line break"):
        load_dataset(data_dir=_npz(tmp_path, y_train=np.arange(40) % 2, y_test=np.arange(12) % 2,
                                   labels=np.array(["ok", name])))


def test_empty_class_folder_is_an_error_and_hidden_folders_are_not_classes(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs")
    (folder / "c").mkdir()
    (folder / "c" / "notes.txt").write_text("no images here")
    _refused(folder, str(folder / "c"), "with no images")
    (folder / "c" / "notes.txt").unlink()
    (folder / "c").rmdir()
    (folder / ".ipynb_checkpoints").mkdir()
    assert load_dataset(data_dir=folder).labels == ("a", "b")


@pytest.fixture
def fifo_watch() -> Iterator[Callable[[Path], list[Path]]]:
    """Watch FIFOs: a reader blocked on one is released (its writer opened and closed), and recorded."""
    import threading

    watched: list[Path] = []
    blocked: list[Path] = []
    stop = threading.Event()

    def release() -> None:
        while not stop.wait(0.2):
            for fifo in watched:
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while someone reads it
                except OSError:
                    continue
                os.close(fd)
                blocked.append(fifo)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()

    def watch(fifo: Path) -> list[Path]:
        os.mkfifo(fifo)
        watched.append(fifo)
        return blocked

    yield watch
    stop.set()
    thread.join()


@pytest.mark.parametrize("name", ["a/x.png", "data.npz"])
def test_fifo_in_the_data_folder_is_not_read(tmp_path: Path, fifo_watch: Callable[[Path], list[Path]],
                                             name: str) -> None:
    folder = _image_folder(tmp_path / "imgs")
    blocked = fifo_watch(folder / name)
    ds = load_dataset(data_dir=folder)
    assert not blocked, "the loader opened a FIFO (it would have hung)"
    assert ds.labels == ("a", "b") and len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 16
