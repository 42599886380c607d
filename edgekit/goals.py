"""Goals (``--goal``): named presets of ``edgekit compress`` settings, the one table of them.

A goal fills in the settings a run leaves at their defaults (flags, recipe keys and Python arguments that are set
win), in the recipe form (flat keys, or nested tables by stage section). The accuracy budget and the certification
are the same for every goal: a goal changes what is tried, never what may be handed out.

- ``default``: the default run (budgeted pruning, int8 and float16, the smallest certified file not slower than the
  fp32 file of its format).
- ``smallest``: the smallest file inside the budget. The budgeted pruning searches filter fractions and then
  sparsities per layer, as by default, but each attempt is fine-tuned 10 epochs instead of 3 and each kind gets 6
  attempts instead of 4: a pruned model that is fine-tuned longer (with half of each target from the trained
  model's outputs, as always) recovers from bolder levels, so bolder attempts hold. int8 gets one scale per weight
  tensor (per-channel tables are a tenth of a file of a few thousand weights). The levels stay the sensitivity's,
  per layer, so the goal names no layer and suits any model. Measured on the reference CNN and full Fashion-MNIST
  by ``benchmarks/smallest_file.py``: slower than the default run, which it is measured against there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GOALS: dict[str, Mapping[str, Any]] = {
    "default": {},
    "smallest": {
        "prune_epochs": 10,
        "prune_budget": {"max_attempts": 6},
        "int8_per_channel": False,
    },
}
"""Goal name → the settings it fills in (recipe keys)."""
