"""Hyper-parameter tuning of training (``edgekit tune``) on Ray Tune with ASHA early stopping.

Named ``tuning`` (not ``tune``) so that importing it never shadows the public
function ``edgekit.tune``, as ``edgekit/compression`` does for ``edgekit.compress``.
"""

from __future__ import annotations

from edgekit.tuning.options import TuneOptions
from edgekit.tuning.run import TuneResult, tune

__all__ = ["TuneOptions", "TuneResult", "tune"]
