"""TuneOptions: the settings only ``edgekit tune`` has (trials, search space, ASHA, where the trials run).

The data, model and training settings are :class:`edgekit.config.CompressConfig`'s, shared with
``compress``. Fields with a ``group`` are also ``edgekit tune`` flags (generated from these fields);
the others are Python-only. Values are checked in ``__post_init__``, so ``edgekit.tune(...)`` gets the
same checks as the command line; errors name the flag.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgekit.errors import FieldError
from edgekit.schema import Checked, flag_name, option

GROUP = "tune"


@dataclasses.dataclass(frozen=True)
class TuneOptions(Checked):
    """How ``edgekit tune`` searches; field names are the keyword arguments of ``edgekit.tune`` and, with dashes,
    flags."""

    trials: int = option(8, group=GROUP, ge=1, help="how many trials to run")
    space: str | None = option(None, group=GROUP, help="YAML search space (keys replace the default space's)")
    grace_period: int = option(1, group=GROUP, ge=1, help="epochs every trial runs before ASHA may stop it; "
                               "larger favours long schedules")
    ray_address: str | None = option(None, group=GROUP, help="HOST:PORT of an existing Ray cluster "
                                     "(default: RAY_ADDRESS, else a local Ray)")
    workers: int | None = option(None, group=GROUP, ge=1, help="local Ray: CPUs to use (default: all cores)")
    reduction_factor: int = option(3, ge=2, help="ASHA keeps 1/N of the trials at each rung")
    max_failures: int = option(2, ge=0, help="restarts of a trial whose worker died")

    @classmethod
    def label(cls, f: dataclasses.Field[Any]) -> str:
        return flag_name(f.name)

    def check(self) -> None:
        from edgekit.executor import resolve_address

        if self.ray_address is not None:
            if not self.ray_address.strip():
                raise FieldError("--ray-address", "must be HOST:PORT, got ''")
            resolve_address(self.ray_address)  # HOST:PORT, 'auto' or ray://… (raises naming --ray-address)
        if self.space is not None and not self.space.strip():
            raise FieldError("--space", "must name a YAML file, got ''")


def cli_fields() -> list[dataclasses.Field[Any]]:
    """The fields that are ``edgekit tune`` flags, in declaration order."""
    return [f for f in dataclasses.fields(TuneOptions) if f.metadata.get("group")]
