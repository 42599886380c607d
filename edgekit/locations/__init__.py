"""Locations: where a device profile's benchmark runner runs (``local``, ``qemu``, ``ssh``, ``tflm``).

Each is one class in its own module (see :class:`edgekit.locations.base.Location`);
:data:`LOCATIONS` maps a profile's ``location`` to it.
"""

from __future__ import annotations

from edgekit.errors import TargetError
from edgekit.locations.base import Location
from edgekit.locations.local import LocalLocation
from edgekit.locations.qemu import QemuLocation
from edgekit.locations.ssh import SshLocation
from edgekit.locations.tflm import TflmLocation
from edgekit.targets import Target

LOCATIONS: dict[str, type[Location]] = {
    cls.kind: cls for cls in (LocalLocation, QemuLocation, SshLocation, TflmLocation)
}
"""A profile's ``location`` value → the class that runs benchmarks there."""


def location_for(target: Target) -> Location:
    """The location object of ``target``."""
    if target.location not in LOCATIONS:
        raise TargetError(f"{target.name}: unknown location {target.location!r} (known: {', '.join(LOCATIONS)})")
    return LOCATIONS[target.location](target)


def unavailable_reason(target: Target, probe_remote: bool = True) -> str | None:
    """``None`` when ``target`` can run from here, else a one-line reason; ``probe_remote=False``: no network."""
    return location_for(target).unavailable_reason(probe=probe_remote)
