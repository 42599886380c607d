"""Dataset registry: MNIST, Fashion-MNIST, scikit-learn digits and the user's own data.

Every loader returns a :class:`Dataset` of float32 NHWC images in [0, 1] and
int64 labels, with a validation split carved from the training data (the test
split is only ever used for reported accuracy).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import unicodedata
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data.idx import read_idx, read_idx_bytes
from edgekit.errors import DataError, UsageError
from edgekit.fsutil import write_bytes

log = logging.getLogger(__name__)

KERAS_DATA_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOAD_TIMEOUT_S = 15.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm")

FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")
DIGIT_LABELS = tuple(str(i) for i in range(10))

# SHA-256 of the *decompressed* Fashion-MNIST IDX payloads: the same whether the
# files came from the Keras bucket or were recompressed by Debian's package.
FASHION_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MNIST_FILE = "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

MAX_CLASSES = 1000
"""Labels are bounded before any label string is built (a label of 10**9 must not allocate 10**9 names)."""
MAX_ARCHIVE_BYTES = int(os.environ.get("EDGEKIT_MAX_DATA_BYTES", 4 << 30))
"""Largest uncompressed NPZ/IDX payload read (``EDGEKIT_MAX_DATA_BYTES`` overrides)."""
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
"""Largest single image decoded from an image folder (PIL's decompression-bomb guard is set to this)."""


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits of an image classification dataset."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: tuple[str, ...]
    source: str = ""
    x_cert: np.ndarray = field(default_factory=lambda: np.empty((0,), np.float32), repr=False)
    """The certification split (labelled): held out from training and from every choice; it only certifies the
    final files (:func:`edgekit.rules.certify`). ``x_val`` is the selection split."""
    y_cert: np.ndarray = field(default_factory=lambda: np.empty((0,), np.int64), repr=False)
    x_extra: np.ndarray = field(default_factory=lambda: np.empty((0,), np.float32), repr=False)
    """Unlabelled images no step trains or calibrates on (the source's training images past ``train_limit``, up to
    :data:`EXTRA_IMAGES`, and ``--unlabeled-dir``): steps that train nothing are certified on them."""
    _fingerprint: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """A short hash of every split's bytes (part of the training stage's cache key)."""
        if not self._fingerprint:
            h = hashlib.sha256(self.name.encode())
            for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test, self.x_cert,
                      self.y_cert):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a).tobytes())
            self._fingerprint.append(h.hexdigest()[:16])
        return self._fingerprint[0]

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.source,
            "train_size": int(len(self.x_train)),
            "val_size": int(len(self.x_val)),
            "certification_size": int(len(self.x_cert)),
            "unlabelled_size": int(len(self.x_extra)),
            "test_size": int(len(self.x_test)),
            "input_shape": list(self.input_shape),
            "labels": list(self.labels),
        }

    def calibration(self, n: int) -> np.ndarray:
        """The first ``n`` training images: the shared calibration set for every quantizer."""
        return self.x_train[: max(1, min(n, len(self.x_train)))]


@dataclass(frozen=True)
class RawSplits:
    """What a source loader returns before scaling and splitting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: tuple[str, ...]
    source: str


# --------------------------------------------------------------------------- helpers


def cache_dir() -> Path:
    """Where edgekit keeps downloaded datasets (``EDGEKIT_DATA_DIR`` overrides)."""
    return Path(os.environ.get("EDGEKIT_DATA_DIR", Path.home() / ".cache" / "edgekit" / "datasets"))


def offline() -> bool:
    return os.environ.get("EDGEKIT_OFFLINE", "") not in ("", "0", "false")


def _download(url: str, target: Path) -> Path:
    if offline():
        raise DataError(f"{url}: not downloaded (EDGEKIT_OFFLINE is set)")
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:  # noqa: S310 (fixed https URL)
            data = r.read()
    except (TimeoutError, urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"{url}: download failed ({reason})") from None
    return write_bytes(target, data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_labels(y: np.ndarray, n_images: int, what: str) -> np.ndarray:
    """Integer class labels in [0, MAX_CLASSES), one per image (float labels only when whole numbers)."""
    if y.ndim != 1:
        raise DataError(f"{what}: labels must be one-dimensional, got shape {y.shape}")
    if len(y) != n_images:
        raise DataError(f"{what}: {n_images} images but {len(y)} labels")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise DataError(f"{what}: labels must be integers, got {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if y.size and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{what}: labels must be whole numbers, got {y.dtype} values such as "
                            f"{_short(y[~(np.isfinite(y) & (y == np.round(y)))][0])}")
    if y.size and y.min() < 0:
        raise DataError(f"{what}: labels must not be negative, found {_short(y.min())}")
    if y.size and y.max() >= MAX_CLASSES:
        raise DataError(f"{what}: label {_short(y.max())} is too large (at most {MAX_CLASSES} classes)")
    return y.astype(np.int64)


def _short(value: object, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- sources


def _load_mnist() -> RawSplits:
    candidates = [cache_dir() / MNIST_FILE, Path.home() / ".keras" / "datasets" / MNIST_FILE]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        try:
            path = _download(KERAS_DATA_URL + MNIST_FILE, candidates[0])
        except DataError as e:
            raise DataError(
                f"mnist: no local copy in {candidates[0].parent} or ~/.keras/datasets and {e}; "
                "put mnist.npz there, or use --dataset digits / fashion-mnist"
            ) from None
    data = path.read_bytes()
    if _sha256(data) != MNIST_SHA256:
        raise DataError(f"{path}: checksum mismatch (not the Keras mnist.npz); delete it to re-download")
    s = _load_npz(path)
    return RawSplits(s.x_train, s.y_train, s.x_test, s.y_test, DIGIT_LABELS, str(path))


def _fashion_dirs() -> list[Path]:
    return [cache_dir() / "fashion-mnist", Path.home() / ".keras" / "datasets" / "fashion-mnist", DEBIAN_FASHION_DIR]


def _load_fashion_mnist() -> RawSplits:
    folder = next((d for d in _fashion_dirs() if all((d / f).is_file() for f in FASHION_FILES)), None)
    if folder is None:
        target = _fashion_dirs()[0]
        try:
            for f in FASHION_FILES:
                if not (target / f).is_file():
                    _download(KERAS_DATA_URL + "fashion-mnist/" + f, target / f)
        except DataError as e:
            raise DataError(
                f"fashion-mnist: not found in {', '.join(map(str, _fashion_dirs()))} and {e}; "
                "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)"
            ) from None
        folder = target
    arrays = {}
    for f, digest in FASHION_FILES.items():
        raw = gzip.decompress((folder / f).read_bytes())
        if _sha256(raw) != digest:
            raise DataError(f"{folder / f}: checksum mismatch (not the Fashion-MNIST release file)")
        arrays[f] = read_idx_bytes(raw, str(folder / f))
    return RawSplits(
        arrays["train-images-idx3-ubyte.gz"],
        arrays["train-labels-idx1-ubyte.gz"],
        arrays["t10k-images-idx3-ubyte.gz"],
        arrays["t10k-labels-idx1-ubyte.gz"],
        FASHION_LABELS,
        str(folder),
    )


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, H, W) float images to (N, size, size)."""
    n, h, w = images.shape
    ys = np.linspace(0, h - 1, size)
    xs = np.linspace(0, w - 1, size)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0)[None, :, None]
    wx = (xs - x0)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bottom * wy


def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    """The digits' 64 pixels (0–16) and labels, read from the table scikit-learn ships (``digits.csv.gz``) without
    importing scikit-learn, whose import takes seconds; through ``load_digits`` where that table is not found."""
    spec = importlib.util.find_spec("sklearn")
    table = (Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
             if spec is not None and spec.submodule_search_locations else None)
    if table is not None and table.is_file():
        with gzip.open(table, "rt") as f:
            rows = np.loadtxt(f, delimiter=",", dtype=np.float64)
        return rows[:, :-1], rows[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def _load_digits() -> RawSplits:
    """scikit-learn's 1,797 real 8×8 digits, upsampled to a 20×20 glyph centred in 28×28 like MNIST."""
    pixels, target = _digits_table()
    glyphs = _resize(pixels.reshape(-1, 8, 8).astype(np.float32) / 16.0, 20)
    images = np.zeros((len(glyphs), 28, 28), np.float32)
    images[:, 4:24, 4:24] = glyphs
    images = np.clip(images * 255.0, 0, 255).round().astype(np.uint8)
    labels = target.astype(np.int64)
    order = np.random.default_rng(1797).permutation(len(images))  # fixed split, independent of --seed
    n_test = 360
    test, train = order[:n_test], order[n_test:]
    return RawSplits(images[train], labels[train], images[test], labels[test], DIGIT_LABELS,
                     "sklearn.datasets.load_digits")


def _check_npz_sizes(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # np.load reports it
    if total > MAX_ARCHIVE_BYTES:
        raise DataError(f"{path}: {total} bytes uncompressed, more than the {MAX_ARCHIVE_BYTES} allowed "
                        "(EDGEKIT_MAX_DATA_BYTES)")


def _load_npz(path: Path) -> RawSplits:
    _check_npz_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} "
                                "(need x_train, y_train, x_test, y_test)")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            labels: tuple[str, ...] = ()
            if "labels" in z.files:
                names = z["labels"]
                if names.ndim != 1 or len(names) > MAX_CLASSES:
                    raise DataError(f"{path}: 'labels' must be a list of at most {MAX_CLASSES} names, "
                                    f"got shape {names.shape}")
                labels = tuple(_short(x, 200) for x in names.tolist())
    except DataError:
        raise
    except ValueError as e:
        raise DataError(f"{path}: not a plain NPZ archive ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read NPZ ({_short(e, 120)})") from None
    return RawSplits(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], labels, str(path))


def _find_one(folder: Path, prefixes: tuple[str, ...], kind: str) -> Path:
    hits = sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith(prefixes) and kind in p.name)
    if not hits:
        raise DataError(f"{folder}: no {'/'.join(prefixes)}*{kind}* IDX file")
    return hits[0]


def _load_idx_dir(folder: Path) -> RawSplits:
    xtr = read_idx(_find_one(folder, ("train",), "images"))
    ytr = read_idx(_find_one(folder, ("train",), "labels"))
    xte = read_idx(_find_one(folder, ("t10k", "test"), "images"))
    yte = read_idx(_find_one(folder, ("t10k", "test"), "labels"))
    labels_file = folder / "labels.txt"
    labels: tuple[str, ...] = ()
    if labels_file.is_file():
        try:
            if labels_file.stat().st_size > MAX_CLASSES * 256:
                raise DataError(f"{labels_file}: too large for a list of at most {MAX_CLASSES} class names")
            labels = tuple(labels_file.read_text(encoding="utf-8").split("\n"))
        except UnicodeDecodeError:
            raise DataError(f"{labels_file}: not UTF-8 text") from None
        except OSError as e:
            raise DataError(f"{labels_file}: cannot read ({e.strerror})") from None
    return RawSplits(xtr, ytr, xte, yte, tuple(name for name in labels if name), str(folder))


def _class_folders(root: Path) -> list[str]:
    """The class folders under ``root``, sorted: its subfolders but hidden ones (``.git``, ``.ipynb_checkpoints``)."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{root}: {len(classes)} class folders, at most {MAX_CLASSES} allowed")
    return classes


def _read_image(f: Path, image_size: int, color: str) -> np.ndarray:
    """One image file, converted to the colour mode and resized (bad or huge files: :class:`DataError`)."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(f)
        with im:
            pixels = im.convert("L" if color == "grayscale" else "RGB").resize(
                (image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(pixels, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{f}: more than {MAX_IMAGE_PIXELS} pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{f}: not a readable image ({_short(e, 120)})") from None


def _load_image_folder(folder: Path, image_size: int, color: str) -> RawSplits:
    """Class-per-subfolder images; ``train/`` and ``test/`` subfolders are used when present."""
    from PIL import Image

    def read_tree(root: Path, classes: list[str], defines: bool) -> tuple[np.ndarray, np.ndarray]:
        xs: list[np.ndarray] = []
        ys: list[int] = []
        for ci, c in enumerate(classes):
            before = len(xs)
            for f in sorted((root / c).iterdir()) if (root / c).is_dir() else []:
                if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():  # a FIFO or device never blocks
                    continue
                xs.append(_read_image(f, image_size, color))
                ys.append(ci)
            if defines and len(xs) == before:  # else a class no image shows: an output the model never learns
                raise DataError(f"{root / c}: a class folder with no images ({', '.join(IMAGE_SUFFIXES)})")
        if not xs:
            raise DataError(f"{root}: no images found in class subfolders")
        return np.stack(xs), np.asarray(ys, np.int64)

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        classes = _class_folders(folder / "train")
        xtr, ytr = read_tree(folder / "train", classes, defines=True)
        xte, yte = read_tree(folder / "test", classes, defines=False)
    else:
        classes = _class_folders(folder)
        x, y = read_tree(folder, classes, defines=True)
        order = np.random.default_rng(0).permutation(len(x))
        n_test = max(1, len(x) // 5)
        xte, yte, xtr, ytr = x[order[:n_test]], y[order[:n_test]], x[order[n_test:]], y[order[n_test:]]
    return RawSplits(xtr, ytr, xte, yte, tuple(classes), str(folder))


def _load_data_dir(folder: Path, image_size: int, color: str) -> RawSplits:
    if not folder.exists():
        raise DataError(f"{folder}: --data-dir does not exist")
    if folder.is_file():
        if folder.suffix == ".npz":
            return _load_npz(folder)
        raise DataError(f"{folder}: --data-dir must be a folder or an .npz file")
    npz = sorted(p for p in folder.glob("*.npz") if p.is_file())
    if len(npz) == 1:
        return _load_npz(npz[0])
    if len(npz) > 1:
        raise DataError(f"{folder}: more than one .npz file ({', '.join(p.name for p in npz)}); pass the file itself")
    names = [p.name for p in folder.iterdir() if p.is_file()]
    if any("idx" in n or "ubyte" in n for n in names):
        return _load_idx_dir(folder)
    if any(p.is_dir() for p in folder.iterdir()):
        return _load_image_folder(folder, image_size, color)
    raise DataError(f"{folder}: no IDX files, .npz archive or class subfolders of images found")


UNLABELLED_KEYS = ("x", "x_unlabeled", "x_unlabelled", "images", "x_train")


def load_unlabeled(path: str | Path, dataset: Dataset, *, image_size: int = 28, color: str = "grayscale") -> Dataset:
    """``dataset`` with the images of ``path`` added to its unlabelled certification images (``x_extra``), by the
    data loader's rules: an .npz (array ``x``, ``images`` or ``x_train``), IDX image files, or image files in a
    folder and its subfolders. They must have the dataset's image shape; labels, if any, are ignored."""
    import dataclasses

    folder = Path(path)
    source = str(folder)
    npz = ([folder] if folder.is_file() and folder.suffix == ".npz"
           else sorted(folder.glob("*.npz")) if folder.is_dir() else [])
    if folder.is_file() and not npz:
        raise DataError(f"{folder}: --unlabeled-dir must be a folder or an .npz file")
    if npz:
        _check_npz_sizes(npz[0])
        try:
            with np.load(npz[0], allow_pickle=False) as z:
                key = next((k for k in UNLABELLED_KEYS if k in z.files), None)
                if key is None:
                    raise DataError(f"{npz[0]}: no image array (one of {', '.join(UNLABELLED_KEYS)})")
                x = z[key]
        except ValueError as e:
            raise DataError(f"{npz[0]}: not a plain NPZ archive ({e})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"{npz[0]}: cannot read NPZ ({_short(e, 120)})") from None
        source = str(npz[0])
    elif any("images" in p.name and ("idx" in p.name or "ubyte" in p.name) for p in folder.iterdir()):
        x = np.concatenate([read_idx(p) for p in sorted(folder.iterdir()) if p.is_file() and "images" in p.name])
    else:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: no .npz archive, IDX image files or images found")
        x = np.stack([_read_image(f, image_size, color) for f in files])
    x = _check_images(np.asarray(x), f"{source} (unlabelled images)")
    if x.shape[1:] != dataset.input_shape:
        raise DataError(f"{source}: unlabelled images {x.shape[1:]} differ in shape from the data's "
                        f"{dataset.input_shape}")
    x = np.clip(x.astype(np.float32) / np.float32(_pixel_scale(x, x, source)), 0.0, 1.0)
    extra = np.concatenate([dataset.x_extra, x]) if len(dataset.x_extra) else x
    return dataclasses.replace(dataset, x_extra=extra)


DATASETS: dict[str, Callable[[], RawSplits]] = {
    "mnist": _load_mnist,
    "fashion-mnist": _load_fashion_mnist,
    "digits": _load_digits,
}
"""Named datasets (the one registry): name → loader."""

DEFAULT_DATASET = "mnist"
FALLBACK_DATASET = "digits"


# --------------------------------------------------------------------------- public


def _check_images(x: np.ndarray, what: str) -> np.ndarray:
    """(N, H, W, C) numeric images with finite values (no scaling yet)."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{what}: images must be (N, H, W) or (N, H, W, C), got shape {x.shape}")
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{what}: images must be real numbers, got {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and x.size:
        bad = ~np.isfinite(x)
        if bad.any():
            kind = "NaN" if np.isnan(x[bad]).any() else "infinite"
            raise DataError(f"{what}: {int(bad.sum())} {kind} pixel value(s), e.g. at index "
                            f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
    return x


def _check_label_names(labels: tuple[str, ...], source: str) -> None:
    """Every class name is one non-empty line: the labels file of a .tflite and the C array hold one name a
    line, so a line break would shift every later label (11 names for 10 outputs)."""
    for label in labels:
        if not label.strip():
            raise DataError(f"{source}: an empty class name (every class needs a name that shows in its labels)")
        if len(label.splitlines()) != 1 or any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in label):
            raise DataError(f"{source}: class name {_short(repr(label), 80)} holds a line break or control character "
                            "(labels are stored one a line)")


def _pixel_scale(x_train: np.ndarray, x_test: np.ndarray, source: str) -> float:
    """One scaling decision for both splits: [0, 1] data stays, [0, 255] data is divided by 255."""
    lo = min(float(x.min()) for x in (x_train, x_test) if x.size)
    hi = max(float(x.max()) for x in (x_train, x_test) if x.size)
    if lo < 0 or hi > 255:
        raise DataError(f"{source}: pixel values must lie in [0, 1] or [0, 255], found {lo:g}..{hi:g}")
    return 255.0 if hi > 1.0 else 1.0


EXTRA_IMAGES = 10_000
"""Most unused training images kept as unlabelled certification images (enough to bound a 0.1 pp disagreement)."""

CERT_MAX = 2_000
"""The certification split's size for mid-sized data (zero losses among 2,000 bound the drop near 0.2 pp)."""


def held_out_sizes(n: int, val_fraction: float = 0.1) -> tuple[int, int]:
    """(selection, certification) images carved from ``n`` labelled training images.

    Selection keeps ``val_fraction`` (what the stages have always chosen on). Certification takes 20 % of the
    images up to :data:`CERT_MAX`, and never fewer than selection: its size sets the smallest budget that can be
    certified (:func:`edgekit.rules.smallest_budget_pp`) and how much reshuffling a fine-tuned file may do. A pruned
    and fine-tuned model typically changes whether 5 % of images are right while losing nothing on average; for the
    file the chooser prefers, the exact bound of that (:func:`edgekit.rules.discordant_upper`) is 1.45 pp on 2,000
    images and 0.76 pp on 6,000 (full Fashion-MNIST's selection size). Small data gives certification a larger
    share, while training keeps at least 60 %. Fewer than 20 images: no certification split (nothing could be
    certified)."""
    select = max(1, int(round(n * val_fraction)))
    if n < 20:
        return select, 0
    cert = max(min(int(round(n * 0.2)), CERT_MAX), select)
    cert = min(cert, max(0, int(n * 0.4) - select))
    return select, cert


def prepare(raw: RawSplits, name: str, *, train_limit: int | None = None, test_limit: int | None = None,
            val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Check, scale pixels to [0, 1] (the same way in both splits), add the channel axis, apply limits and
    carve the validation split. Bad data (NaN/inf pixels, negative, float or huge labels, one class) is refused."""
    y_train = _check_labels(np.asarray(raw.y_train), len(raw.x_train), f"{raw.source} (train labels)")
    y_test = _check_labels(np.asarray(raw.y_test), len(raw.x_test), f"{raw.source} (test labels)")
    x_train = _check_images(np.asarray(raw.x_train), f"{raw.source} (train images)")
    x_test = _check_images(np.asarray(raw.x_test), f"{raw.source} (test images)")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{raw.source}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} "
                        "differ in shape")
    n_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    if len(raw.labels) > MAX_CLASSES:
        raise DataError(f"{raw.source}: {len(raw.labels)} class names, at most {MAX_CLASSES} allowed")
    _check_label_names(raw.labels, raw.source)
    labels = raw.labels or tuple(str(i) for i in range(n_classes))
    if n_classes > len(labels):
        raise DataError(f"{raw.source}: labels must be 0..{len(labels) - 1} ({len(labels)} class names), "
                        f"found {n_classes - 1}")
    x_extra = x_train[len(x_train) if train_limit is None else train_limit:][:EXTRA_IMAGES]
    if train_limit is not None:
        x_train, y_train = x_train[:train_limit], y_train[:train_limit]
    if test_limit is not None:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    if len(x_train) < 10 or len(x_test) < 1:
        raise DataError(f"{raw.source}: too few samples ({len(x_train)} train, {len(x_test)} test)")
    if len(np.unique(y_train)) < 2:
        raise DataError(f"{raw.source} (train labels): only one class ({_short(y_train[0])}) in the training "
                        "split; a classifier needs at least two")
    scale = _pixel_scale(x_train, x_test, raw.source)
    x_train = np.clip(x_train.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    x_test = np.clip(x_test.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    x_extra = np.clip(x_extra.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    order = np.random.default_rng(seed).permutation(len(x_train))
    n_val, n_cert = held_out_sizes(len(x_train), val_fraction)
    val, cert, train = (np.sort(order[:n_val]), np.sort(order[n_val:n_val + n_cert]),
                        np.sort(order[n_val + n_cert:]))
    return Dataset(name, x_train[train], y_train[train], x_train[val], y_train[val], x_test, y_test,
                   tuple(labels), raw.source, x_train[cert], y_train[cert], x_extra)


def load_dataset(name: str | None = None, *, data_dir: str | Path | None = None, train_limit: int | None = None,
                 test_limit: int | None = None, seed: int = 0, image_size: int = 28, color: str = "grayscale",
                 val_fraction: float = 0.1) -> Dataset:
    """Load a dataset by registry name or from ``data_dir``.

    With neither given, MNIST is tried and, when it can be neither found locally nor
    downloaded, the bundled ``digits`` set is used instead (a warning is logged).
    """
    if name is not None and data_dir is not None:
        raise UsageError("--dataset and --data-dir are mutually exclusive")
    if train_limit is not None and train_limit < 10:
        raise UsageError(f"--train-limit must be at least 10, got {train_limit}")
    if test_limit is not None and test_limit < 1:
        raise UsageError(f"--test-limit must be at least 1, got {test_limit}")
    if color not in ("grayscale", "rgb"):
        raise UsageError(f"--color must be grayscale or rgb, got {_short(repr(color))}")
    kw: dict[str, Any] = dict(train_limit=train_limit, test_limit=test_limit, seed=seed, val_fraction=val_fraction)
    if data_dir is not None:
        folder = Path(data_dir)
        return prepare(_load_data_dir(folder, image_size, color), folder.name or str(folder), **kw)
    if name is None:
        try:
            raw = _load_mnist()
            name = DEFAULT_DATASET
        except DataError as e:
            log.warning("MNIST unavailable (%s); running on the bundled '%s' dataset instead", e, FALLBACK_DATASET)
            raw, name = _load_digits(), FALLBACK_DATASET
        return prepare(raw, name, **kw)
    if name not in DATASETS:
        raise UsageError(f"--dataset: unknown dataset {_short(repr(name))} (choose from {', '.join(DATASETS)})")
    return prepare(DATASETS[name](), name, **kw)
