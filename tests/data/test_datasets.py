"""Dataset registry and loaders: real files, strict validation, offline fallback."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edgekit.data.datasets import DEBIAN_FASHION_DIR, load_dataset
from edgekit.data.idx import read_idx
from edgekit.errors import DataError, UsageError


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx_dir(folder: Path, n_train: int = 40, n_test: int = 12, gz: bool = True) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, arr in files.items():
        data = idx_bytes(np.asarray(arr))
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def test_idx_round_trip_raw_and_gzip(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    assert np.array_equal(read_idx(tmp_path / "a"), arr)
    assert np.array_equal(read_idx(tmp_path / "b.gz"), arr)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x12\x34" + b[2:], "wrong magic number"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b[:6], "truncated IDX header"),
])
def test_idx_rejects_damaged_files(tmp_path: Path, damage, message: str) -> None:
    f = tmp_path / "x"
    f.write_bytes(damage(idx_bytes(np.zeros((3, 4, 4)))))
    with pytest.raises(DataError, match=message) as e:
        read_idx(f)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_idx_data_dir_loads_scaled_nhwc(tmp_path: Path) -> None:
    ds = load_dataset(data_dir=write_idx_dir(tmp_path / "d"))
    assert ds.x_train.shape[1:] == (28, 28, 1) and ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_cert) == 40 and len(ds.x_test) == 12


def test_label_count_mismatch_is_named(tmp_path: Path) -> None:
    folder = write_idx_dir(tmp_path / "d", gz=False)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(39)))
    with pytest.raises(DataError, match="40 images but 39 labels"):
        load_dataset(data_dir=folder)


def test_npz_loads_and_refuses_pickles(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    good = tmp_path / "good.npz"
    np.savez(good, x_train=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 3, 30),
             x_test=rng.integers(0, 255, (5, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 3, 5))
    ds = load_dataset(data_dir=good)
    assert ds.input_shape == (28, 28, 1) and len(ds.x_test) == 5
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.array([object()], dtype=object), y_train=np.zeros(1), x_test=np.zeros(1), y_test=np.zeros(1))
    with pytest.raises(DataError, match="bad.npz"):
        load_dataset(data_dir=bad)
    missing = tmp_path / "missing.npz"
    np.savez(missing, x_train=np.zeros((3, 2, 2)))
    with pytest.raises(DataError, match="missing array"):
        load_dataset(data_dir=missing)


def test_digits_table_is_scikit_learns_without_importing_it() -> None:
    """The digits are read from the table scikit-learn ships, without its seconds-long import: the pixels and
    labels of ``load_digits`` (their SHA-256, taken from ``load_digits`` itself)."""
    import hashlib
    import subprocess
    import sys

    code = ("import sys; from edgekit.data.datasets import _digits_table; x, y = _digits_table(); "
            "print(x.shape, y.shape, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(1797,", "64)", "(1797,)", "False"]
    from edgekit.data.datasets import _digits_table

    x, y = _digits_table()
    digest = hashlib.sha256(x.astype(np.uint8).tobytes() + y.astype(np.uint8).tobytes()).hexdigest()
    assert x.max() == 16 and digest == "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def test_digits_is_real_and_deterministic() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert len(a.x_train) + len(a.x_val) + len(a.x_cert) + len(a.x_test) == 1797
    assert np.array_equal(a.x_test, b.x_test) and a.fingerprint() == b.fingerprint()
    assert a.labels == tuple("0123456789")


def test_limits_and_validation_split() -> None:
    ds = load_dataset("digits", train_limit=200, test_limit=50)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_cert) == 200 and len(ds.x_test) == 50
    assert (len(ds.x_val), len(ds.x_cert), len(ds.y_cert)) == (20, 40, 40)  # selection, certification
    full = load_dataset("digits")  # the training images past the limit: unlabelled, never trained on
    assert len(ds.x_extra) == len(full.x_train) + len(full.x_val) + len(full.x_cert) - 200


def test_default_falls_back_to_digits_offline(caplog: pytest.LogCaptureFixture, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    ds = load_dataset()
    assert ds.name == "digits"
    assert "MNIST unavailable" in caplog.text


def test_explicit_mnist_offline_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match="mnist"):
        load_dataset("mnist")


def test_unknown_dataset() -> None:
    with pytest.raises(UsageError, match="unknown dataset 'nope'"):
        load_dataset("nope")


@pytest.mark.skipif(not DEBIAN_FASHION_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist package")
def test_fashion_mnist_from_debian_package_is_checksummed() -> None:
    ds = load_dataset("fashion-mnist", train_limit=1000, test_limit=100)
    assert ds.labels[0] == "T-shirt/top" and len(ds.x_test) == 100
    assert set(np.unique(ds.y_train)) <= set(range(10))


def test_image_folders_resize_colour_and_labels(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for split, n in (("train", 12), ("test", 4)):
        for label in ("cat", "dog"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    gray = load_dataset(data_dir=tmp_path, image_size=32)
    assert gray.labels == ("cat", "dog") and gray.input_shape == (32, 32, 1)
    assert len(gray.x_test) == 8 and len(gray.x_train) + len(gray.x_val) + len(gray.x_cert) == 24
    rgb = load_dataset(data_dir=tmp_path, image_size=16, color="rgb")
    assert rgb.input_shape == (16, 16, 3)
    (tmp_path / "train" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(data_dir=tmp_path)


def test_unlabelled_images_load_by_the_loader_rules(tmp_path: Path) -> None:
    """--unlabeled-dir: an .npz array or a folder of images (any subfolders), scaled like the data; a shape that
    differs from the data's is refused naming the file."""
    from PIL import Image

    from edgekit.data.datasets import load_unlabeled
    from edgekit.errors import DataError

    ds = load_dataset("digits", train_limit=100, test_limit=10)
    before = len(ds.x_extra)
    npz = tmp_path / "extra.npz"
    np.savez(npz, x=np.full((5, 28, 28), 255, np.uint8))
    with_npz = load_unlabeled(npz, ds)
    assert len(with_npz.x_extra) == before + 5 and float(with_npz.x_extra[-1].max()) == 1.0
    folder = tmp_path / "imgs" / "any"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.zeros((20, 20), np.uint8)).save(folder / f"{i}.png")
    assert len(load_unlabeled(tmp_path / "imgs", ds).x_extra) == before + 3
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 9, 9), np.uint8))
    with pytest.raises(DataError, match="bad.npz: unlabelled images"):
        load_unlabeled(tmp_path / "bad.npz", ds)
