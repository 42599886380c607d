"""The run folder: where ``--out`` may go, what ``--force`` may replace, and the lock that keeps
two runs from writing the same folder.

A run is assembled in ``.<out>.partial-<pid>`` beside ``--out`` and renamed into place at the end,
under an ``flock`` on ``.<out>.lock``; partial folders whose process is gone are removed by later runs.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgekit.errors import OutputExistsError, UsageError

log = logging.getLogger(__name__)

REPORT_JSON = "report.json"
_LEFTOVER = re.compile(r"^\..+\.(partial|old)-(\d+)$")


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a folder edgekit writes into (not a folder, or neither it nor its nearest
    existing parent writable), as 'FILE is …'; None when it is one or can be created."""
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            return f"{path} is not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"
    base = _nearest_existing(path)
    if not base.is_dir():
        return f"{base} is a file, not a folder (cannot create {path})"
    return None if os.access(base, os.W_OK | os.X_OK) else f"{base} is not writable (cannot create {path})"


def check_out(path: Path, force: bool, protect: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """Refuse an ``--out`` that cannot be written, or that exists without ``force``; with ``force``,
    refuse anything but an edgekit run folder (one holding report.json), and never the home or
    current folder, one of their parents, or a folder holding the inputs named in ``protect``."""
    exists = path.exists() or path.is_symlink()
    base = path.absolute().parent if exists else _nearest_existing(path)
    if not base.is_dir():
        raise UsageError(f"--out {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path}: {base} is not writable")
    if not exists:
        return path
    if not force:
        raise OutputExistsError(f"{path}: already exists (use --force to replace it, or choose another --out)")
    if path.is_symlink() or not path.is_dir():
        raise OutputExistsError(f"{path}: exists and is not a folder (--force replaces only run folders)")
    resolved = path.resolve()
    for name, special in (("your home folder", Path.home()), ("the current folder", Path.cwd())):
        special = special.resolve()
        if resolved == special or resolved in special.parents:
            raise OutputExistsError(f"{path}: is {name} or holds it; --force will not replace it")
    if not (path / REPORT_JSON).is_file():
        raise OutputExistsError(f"{path}: not an edgekit run folder (no {REPORT_JSON}); --force replaces only runs")
    for item in protect:
        if item and (Path(item).resolve() == resolved or resolved in Path(item).resolve().parents):
            raise OutputExistsError(f"{path}: holds {item}, an input of this run; --force will not replace it")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path) -> list[Path]:
    """Remove ``.NAME.partial-PID`` / ``.NAME.old-PID`` folders in ``parent`` whose process is gone
    (an old run whose replacement never arrived is renamed back to ``NAME`` instead)."""
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _LEFTOVER.match(p.name)
        if m and p.is_dir() and not p.is_symlink() and int(m.group(2)) != os.getpid() and not _alive(int(m.group(2))):
            original = parent / p.name[1:].rsplit(".", 1)[0]
            if m.group(1) == "old" and not original.exists() and not original.is_symlink():
                os.rename(p, original)  # killed between moving the old run aside and renaming the new one in
                log.warning("restored %s (an interrupted run had moved it aside)", original)
                continue
            shutil.rmtree(p, ignore_errors=True)
            log.info("removed %s (left by an interrupted run)", p)
            removed.append(p)
    return removed


class OutLock:
    """An exclusive, non-blocking ``flock`` on ``.<out>.lock``; a second run on the same ``--out`` is refused."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out.parent / f".{out.name or 'out'}.lock"
        self.fd: int | None = None

    def acquire(self) -> OutLock:
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputExistsError(
                        f"{self.out}: another edgekit run (pid {holder or '?'}) is writing it") from None
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its holder unlinked meanwhile
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self.fd = fd
                return self
            os.close(fd)
        raise OutputExistsError(f"{self.out}: could not lock {self.path}")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> OutLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def swap_into_place(staging: Path, out: Path, force: bool) -> None:
    """Rename the finished ``staging`` folder to ``out`` (under the lock), re-checking ``out`` first:
    it may have appeared since start-up, and only ``force`` (on a run folder) replaces it."""
    backup = None
    if out.exists() or out.is_symlink():
        check_out(out, force)
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
    os.replace(staging, out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


@contextmanager
def staged_run(out: Path, force: bool, protect: Iterable[str | os.PathLike[str] | None] = ()) -> Iterator[Path]:
    """Lock ``out`` (a second run on it is refused), check it again (it may have appeared since
    :func:`check_out`), yield an empty staging folder beside it, and rename that into place when the
    block ends; on an error or interrupt the staging folder is removed and ``out`` is left as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with OutLock(out):
        protect = tuple(protect)
        check_out(out, force, protect)
        clean_stale(out.parent)
        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield staging
            swap_into_place(staging, out, force)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
