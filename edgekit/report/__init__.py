"""Run reports: the typed report.json, the results table, regressions, and the Markdown/HTML pages.

- :mod:`edgekit.report.model`: ``Report``, ``ArtifactRecord``, ``BenchRow`` and their records
  (``from_dict``/``to_dict``).
- :mod:`edgekit.report.regressions`: artifacts larger, slower or less accurate than their parent.
- :mod:`edgekit.report.table`: ``results_table()``, the one table report.md and report.html draw.
- :mod:`edgekit.report.build`: a run's report dict; :mod:`edgekit.report.write`: ``write_reports``, ``load``,
  ``regenerate``.
"""

from edgekit.report.model import ArtifactRecord, BenchRow, Regression, Report
from edgekit.report.regressions import Tolerance, find_regressions, regressions_for_artifacts

__all__ = ["ArtifactRecord", "BenchRow", "Regression", "Report", "Tolerance", "find_regressions",
           "regressions_for_artifacts"]
