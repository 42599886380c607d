"""The artifact cache: finished stage outputs stored by content hash.

``<root>/<artifact id>/`` holds the model file and ``artifact.json``. Because an
id hashes (parent id, stage, config, edgekit version and source), a re-run that changes
only the quantization finds its trained and pruned models here and does not
retrain. ``EDGEKIT_CACHE_DIR`` overrides the root.

Every entry carries ``SHA256SUMS`` (the digests of its model file and ``artifact.json``),
checked on every read: an entry that is incomplete or altered (flipped bytes, a missing
model file, a truncated record) is removed, logged once, and the stage is recomputed.
The cache root may live on another filesystem than the run folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgekit.artifact import ARTIFACT_JSON, Artifact
from edgekit.errors import EdgekitError
from edgekit.fsutil import move_dir, sha256_file, write_json, write_text

log = logging.getLogger(__name__)

SUMS = "SHA256SUMS"
_dropped: set[str] = set()  # entries already reported in this process


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGEKIT_CACHE_DIR", Path.home() / ".cache" / "edgekit")) / "artifacts"


def check_cache_env() -> None:
    """A one-line UsageError when ``EDGEKIT_CACHE_DIR`` is set but cannot be a folder edgekit writes into."""
    from edgekit.errors import UsageError
    from edgekit.rundir import folder_problem

    value = os.environ.get("EDGEKIT_CACHE_DIR")
    if value is None:
        return
    problem = folder_problem(Path(value)) if value.strip() else "must name a folder, got ''"
    if problem:
        raise UsageError(f"EDGEKIT_CACHE_DIR: {problem}")


@contextmanager
def using_cache_dir(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Inside the block the cache root is ``path`` (``--cache-dir``): ``EDGEKIT_CACHE_DIR``, which the artifact
    cache, the executor and every Ray worker read, is set to it and restored after; None keeps
    ``EDGEKIT_CACHE_DIR``, checked here (before any work) as ``--cache-dir`` is by the config layer."""
    if path is None:
        check_cache_env()
        yield
        return
    saved = os.environ.get("EDGEKIT_CACHE_DIR")
    os.environ["EDGEKIT_CACHE_DIR"] = os.path.abspath(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("EDGEKIT_CACHE_DIR", None)
        else:
            os.environ["EDGEKIT_CACHE_DIR"] = saved


class ArtifactCache:
    """Stores and finds artifacts by id; a disabled cache stores into a private folder only."""

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = root or default_cache_dir()
        self.enabled = enabled

    def get(self, artifact_id: str) -> Artifact | None:
        """The cached artifact, or None when absent; a damaged entry is dropped (and logged once)."""
        if not self.enabled:
            return None
        folder = self.root / artifact_id
        if not folder.exists():
            return None
        problem = _check_entry(folder, artifact_id)
        if problem is None:
            artifact = Artifact.from_dict(json.loads((folder / ARTIFACT_JSON).read_text()), root=folder)
            log.debug("cache hit %s (%s)", artifact_id, artifact.stage)
            return artifact
        self._drop(folder, problem)
        return None

    def _drop(self, folder: Path, problem: str) -> None:
        key = str(folder)
        if key not in _dropped:
            _dropped.add(key)
            log.warning("cache entry %s is damaged (%s); removed, the stage is recomputed", folder, problem)
        doomed = folder.with_name(f".{folder.name}.bad-{os.getpid()}")
        try:
            os.rename(folder, doomed)  # out of the way first, so no reader sees a half-deleted entry
        except OSError:
            doomed = folder
        shutil.rmtree(doomed, ignore_errors=True)

    def put(self, artifact: Artifact, staged: Path, into: Path | None = None) -> Artifact:
        """Move ``staged`` (a folder holding the model file) into the cache, or into ``into`` when disabled."""
        folder = (self.root if self.enabled else (into or self.root)) / artifact.id
        folder.parent.mkdir(parents=True, exist_ok=True)
        stored = artifact.with_path(folder / artifact.path.name)
        write_json(staged / ARTIFACT_JSON, stored.to_dict(relative_to=folder))
        sums = {ARTIFACT_JSON: sha256_file(staged / ARTIFACT_JSON), artifact.path.name: sha256_file(artifact.path)}
        sums.update({f.name: sha256_file(f) for f in sorted(staged.iterdir())  # a stage's side files (prune.lighter)
                     if f.is_file() and f.name not in sums and f.name != SUMS and not f.name.startswith(".")})
        write_text(staged / SUMS, "".join(f"{digest}  {name}\n" for name, digest in sums.items()))
        if folder.exists():  # a concurrent run finished first: keep theirs, unless it is damaged (get drops it)
            existing = self.get(artifact.id) if self.enabled else stored
            if existing is not None:
                shutil.rmtree(staged, ignore_errors=True)
                return existing
        try:
            move_dir(staged, folder)
        except FileExistsError:  # lost a race with a concurrent run
            shutil.rmtree(staged, ignore_errors=True)
            return self.get(artifact.id) or stored
        return stored


def _check_entry(folder: Path, artifact_id: str) -> str | None:
    """Why a cache entry cannot be used, or None when every digest matches."""
    try:
        lines = (folder / SUMS).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return f"no readable {SUMS}"
    expected: dict[str, str] = {}
    for line in lines:
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name.startswith("."):
            return f"malformed {SUMS}"
        expected[name] = digest
    if ARTIFACT_JSON not in expected or len(expected) < 2:
        return f"{SUMS} does not list the model file and {ARTIFACT_JSON}"
    for name, digest in expected.items():
        try:
            if sha256_file(folder / name) != digest:
                return f"{name}: checksum mismatch"
        except OSError:
            return f"{name}: missing"
    try:
        record = json.loads((folder / ARTIFACT_JSON).read_text())
        artifact = Artifact.from_dict(record, root=folder)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{ARTIFACT_JSON}: unreadable ({type(e).__name__})"
    except EdgekitError as e:  # an unknown format or precision
        return f"{ARTIFACT_JSON}: {e}"
    if artifact.id != artifact_id or artifact.path.parent != folder or artifact.path.name not in expected:
        return f"{ARTIFACT_JSON} does not describe this entry"
    return None
