"""Goals (``--goal``): named presets of ``edgekit compress`` settings, the one table of them.

A goal fills in the settings a run leaves at their defaults (flags, recipe keys and Python arguments that are set
win), in the recipe form (flat keys, or nested tables by stage section). The accuracy budget and the certification
are the same for every goal: a goal changes what is tried, never what may be handed out.

- ``default``: the default run (budgeted pruning, int8 and float16, the smallest certified file not slower than the
  fp32 file of its format).
- ``smallest``: the smallest file inside the budget. A search over bolder filter removal (half and three quarters
  of every layer's filters and units; the file's bulk is the first dense layer, which shrinks with both the last
  convolution's filters and its own units) × the search's quantization modes, each pruning fine-tuned 20 epochs
  with a cosine rate and 30 % of each target from the trained model's outputs (distillation: a heavily pruned
  model keeps more of the trained model's decisions), int8 with one scale per weight tensor (per-channel tables
  are a tenth of a file of a few thousand weights). Measured on the reference CNN and full Fashion-MNIST by
  ``benchmarks/smallest_file.py``. Slower than the default run: every candidate is fine-tuned 20 epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GOALS: dict[str, Mapping[str, Any]] = {
    "default": {},
    "smallest": {
        "search": True,
        "search_structured": (0.5, 0.75),
        "search_sparsity": (0.0,),
        "int8_per_channel": False,
        "prune_epochs": 20,
        "structured_prune": {"lr_schedule": "cosine", "distill": 0.3},
    },
}
"""Goal name → the settings it fills in (recipe keys)."""
