"""The artifact cache: finished stage outputs stored by content hash.

``<root>/<artifact id>/`` holds the model file and ``artifact.json``. Because an
id hashes (parent id, stage, config, edgekit version), a re-run that changes
only the quantization finds its trained and pruned models here and does not
retrain. ``EDGEKIT_CACHE_DIR`` overrides the root.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from edgekit.artifact import ARTIFACT_JSON, Artifact
from edgekit.fsutil import write_json

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGEKIT_CACHE_DIR", Path.home() / ".cache" / "edgekit")) / "artifacts"


class ArtifactCache:
    """Stores and finds artifacts by id; a disabled cache stores into a private folder only."""

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = root or default_cache_dir()
        self.enabled = enabled

    def get(self, artifact_id: str) -> Artifact | None:
        """The cached artifact, or None (also when its files are incomplete)."""
        if not self.enabled:
            return None
        folder = self.root / artifact_id
        try:
            record = json.loads((folder / ARTIFACT_JSON).read_text())
            artifact = Artifact.from_dict(record, root=folder)
        except (OSError, ValueError, KeyError):
            return None
        if not artifact.path.exists():
            return None
        log.debug("cache hit %s (%s)", artifact_id, artifact.stage)
        return artifact

    def put(self, artifact: Artifact, staged: Path, into: Path | None = None) -> Artifact:
        """Move ``staged`` (a folder holding the model file) into the cache, or into ``into`` when disabled."""
        folder = (self.root if self.enabled else (into or self.root)) / artifact.id
        folder.parent.mkdir(parents=True, exist_ok=True)
        stored = artifact.with_path(folder / artifact.path.name)
        write_json(staged / ARTIFACT_JSON, stored.to_dict(relative_to=folder))
        if folder.exists():  # a concurrent run finished first; keep theirs
            shutil.rmtree(staged, ignore_errors=True)
            return self.get(artifact.id) or stored
        os.replace(staged, folder)
        return stored
