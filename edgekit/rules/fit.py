"""Fit: does a model fit a microcontroller's RAM and flash?

RAM holds the TFLM tensor arena (measured) plus the runtime's own RAM (the profile's estimate); flash holds the
model file plus the runtime's code. A model fits when both needs are within the profile's budgets. The measuring
(the TFLM run that sizes the arena) lives in :mod:`edgekit.mcu`; this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True)
class Budgets:
    """A profile's ``[mcu]`` budgets, in KB."""

    ram_kb: int
    flash_kb: int
    runtime_ram_kb: int
    runtime_flash_kb: int


@dataclass(frozen=True)
class Fit:
    """What a model needs of RAM and flash (bytes; None where unknown) against the budgets, and whether it fits."""

    arena_bytes: int | None
    model_bytes: int | None
    budgets: Budgets

    @property
    def ram(self) -> int:
        return self.budgets.ram_kb * KIB

    @property
    def flash(self) -> int:
        return self.budgets.flash_kb * KIB

    @property
    def ram_needed(self) -> int | None:
        return None if self.arena_bytes is None else self.arena_bytes + self.budgets.runtime_ram_kb * KIB

    @property
    def flash_needed(self) -> int | None:
        return None if self.model_bytes is None else self.model_bytes + self.budgets.runtime_flash_kb * KIB

    @property
    def fits_ram(self) -> bool | None:
        need = self.ram_needed
        return None if need is None else need <= self.ram

    @property
    def fits_flash(self) -> bool | None:
        need = self.flash_needed
        return None if need is None else need <= self.flash

    @property
    def fits(self) -> bool | None:
        """True when both fit, False when either does not, None when either is unknown and the other fits."""
        if self.fits_ram is False or self.fits_flash is False:
            return False
        return None if self.fits_ram is None or self.fits_flash is None else True

    @property
    def reason(self) -> str:
        """Which of RAM and flash does not fit, and by what ('' when nothing is known not to fit)."""
        b, problems = self.budgets, []
        if self.fits_ram is False:
            assert self.arena_bytes is not None
            problems.append(f"RAM: arena {self.arena_bytes / KIB:.1f} KB + runtime {b.runtime_ram_kb} KB > "
                            f"{b.ram_kb} KB")
        if self.fits_flash is False:
            assert self.model_bytes is not None
            problems.append(f"flash: model {self.model_bytes / KIB:.1f} KB + runtime {b.runtime_flash_kb} KB > "
                            f"{b.flash_kb} KB")
        return "; ".join(problems)
