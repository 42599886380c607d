"""A location: *where* the benchmark runner runs (this machine, qemu, an SSH board).

A location wraps one device profile and answers three questions: can it run from here
(:meth:`Location.unavailable_reason`), what must be provisioned first (:meth:`Location.setup`),
and what did the runner measure (:meth:`Location.run`). Adding a location (e.g. adb) is one
module with one subclass, plus its row in :data:`edgekit.locations.LOCATIONS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from edgekit.targets import Target

THIS_MACHINE = "this machine"
"""The :meth:`Location.machine` of every location whose runner runs here (local, qemu, tflm)."""


class Location(ABC):
    """Where one device profile's benchmarks run."""

    kind: ClassVar[str]  # the profile's ``location`` value
    host_paths: ClassVar[bool] = False  # request paths are read on this machine (``~`` is expanded here)

    def __init__(self, target: Target) -> None:
        self.target = target

    def where(self) -> str:
        """A few words for listings: the kind and the machine it names."""
        return self.kind

    def machine(self) -> str:
        """The machine whose CPU runs the benchmarks: two benchmarks on one machine never run at once.

        :data:`THIS_MACHINE` unless the location is another machine (an SSH board), which can also
        drop mid-run; a benchmark fleet runs different machines at the same time.
        """
        return THIS_MACHINE

    @abstractmethod
    def unavailable_reason(self, probe: bool = True) -> str | None:
        """``None`` when benchmarks can run there from here, else why not (one line); ``probe=False``: no network."""

    def setup(self, force: bool = False) -> str:
        """Provision what the location needs (idempotent; ``force`` redoes it); returns a one-line summary."""
        return f"{self.target.name}: nothing to set up"

    @abstractmethod
    def run(self, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
        """Run the benchmark runner on ``request`` (see :mod:`edgekit.runtime.runner`); return its JSON result.

        ``workdir`` is an empty private folder holding the request's data; raises a one-line TargetError.
        """
