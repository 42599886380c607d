"""The report's "worse than its parent" flags and notes, raised by the rule of :mod:`edgekit.rules`.

The rule itself (budget, certification, size and speed against the baseline) is :mod:`edgekit.rules`; the
chooser and the budgeted stages call it there. This module applies it to a report's records:

It only converts: the flags become the report's :class:`~edgekit.report.model.Regression` records. What counts as
larger, slower or less accurate, and against which reference, is :mod:`edgekit.rules.parents`; the size and speed
rule against the fp32 baseline is :mod:`edgekit.rules.baseline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgekit.report.model import ArtifactRecord, BenchRow, Regression
from edgekit.rules import parents
from edgekit.rules.baseline import Tolerance, baseline_exclusion, batch1_p50, batch1_pair, budget_note, common_threads  # noqa: F401  (re-exported for the renderers)
from edgekit.rules.bounds import within_budget  # noqa: F401
from edgekit.rules.parents import Metric, reference_of  # noqa: F401

if TYPE_CHECKING:
    from edgekit.artifact import Artifact


def judge(artifacts: Sequence[ArtifactRecord], rows: Sequence[BenchRow], *, metric: Metric = "accuracy",
          tolerance: Tolerance = Tolerance(),
          budget_pp: float | None = None) -> tuple[tuple[Regression, ...], tuple[tuple[str, str], ...]]:
    """:func:`edgekit.rules.parents.judge` on a report's records: its flags as :class:`Regression` records, and
    its notes (``(artifact id, sentence)``: a drop against its parent within ``budget_pp``)."""
    return parents.judge(artifacts, rows, metric=metric, tolerance=tolerance, budget_pp=budget_pp, make=Regression)


def find_regressions(artifacts: Sequence[ArtifactRecord], rows: Sequence[BenchRow], *,
                     metric: Metric = "accuracy", tolerance: Tolerance = Tolerance(),
                     budget_pp: float | None = None) -> tuple[Regression, ...]:
    """Every way each artifact is worse than its reference (the flags of :func:`judge`)."""
    return judge(artifacts, rows, metric=metric, tolerance=tolerance, budget_pp=budget_pp)[0]


def regressions_for_artifacts(artifacts: Sequence[Artifact], rows: Sequence[Mapping[str, Any]], *,
                              metric: Metric = "val_accuracy", tolerance: Tolerance = Tolerance(),
                              budget_pp: float | None = None) -> tuple[Regression, ...]:
    """:func:`find_regressions` on pipeline objects: ``edgekit.artifact.Artifact`` and benchmark row dicts.

    Accuracies come from each artifact's ``metrics`` (``accuracy`` / ``val_accuracy``); sizes from its file.
    """
    return parents.judge(parents.file_records(artifacts), [BenchRow.from_dict(r) for r in rows], metric=metric,
                         tolerance=tolerance, budget_pp=budget_pp, make=Regression)[0]
