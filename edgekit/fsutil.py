"""Atomic file writes (write to a temporary name beside the target, then rename) and folder moves
that also work across filesystems."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; rename it onto ``target`` on success.
    On failure the temporary file and any folder created for it are removed."""
    target = Path(target)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode a plain open() would
    try:
        _maybe_inject_enospc(target)
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            tmp_path.unlink(missing_ok=True)
        for folder in created:  # innermost first; only folders this call made and left empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_bytes(path: str | os.PathLike[str]) -> int:
    """Size of a file, or the total size of a folder's files (SavedModel)."""
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


FAULT_ENV = "EDGEKIT_FAULT_ENOSPC"
"""Fault injection for tests: when set to a path prefix, atomic writes under it fail with ENOSPC."""


def _maybe_inject_enospc(target: Path) -> None:
    prefix = os.environ.get(FAULT_ENV)
    if prefix and str(target.absolute()).startswith(prefix):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))


def move_dir(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Move the folder ``src`` to ``dst`` (which must not exist), also across filesystems.

    A rename within one filesystem is atomic. Across devices (tmpfs, a second disk, NFS,
    container volumes) the folder is copied to a temporary name beside ``dst``, renamed
    into place there, and only then removed from ``src``. Raises FileExistsError when
    ``dst`` appeared meanwhile (e.g. a concurrent run finished first).
    """
    src, dst = Path(src), Path(dst)
    try:
        os.rename(src, dst)
        return dst
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from None
        if e.errno != errno.EXDEV:
            raise
    tmp = dst.parent / f".{dst.name}.copy-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp, symlinks=True)
        try:
            os.rename(tmp, dst)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)
    return dst


def write_files(files: dict[Path, str | bytes]) -> list[Path]:
    """Write several files as one step: every file goes to a temporary name first and the renames
    happen only once all were written, so a full disk never leaves one file of a set without the others."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        for target, data in files.items():
            tmp = stack.enter_context(atomic_path(target))
            tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return list(files)
