"""The accuracy budget and the "never worse than the baseline" rule: the one place they are decided.

The budget promises *a file within ``budget`` pp of the reference model, at the stated confidence*. Held-out
images are split in two (:func:`edgekit.data.datasets.held_out_sizes`):

- the **selection** split chooses: sensitivity analysis, pruning levels and attempts, int8 protection. It is looked
  at many times, so what it says is optimistic for the winner (the winner's curse). Its check,
  :func:`edgekit.compression.budget.budget_check` at :data:`SELECTION_CONFIDENCE`, only predicts what
  certification will accept.
- the **certification** split chooses nothing. Each deployable file is certified on it once (:func:`certify`):
  an exact one-sided bound at the stated confidence, all files' bounds valid together by a weighted Holm
  procedure (:func:`preference_shares`): the files the chooser prefers, ranked on the selection split, sizes and
  speeds before the certification images are looked at, get 1/2, 1/4, … of the error, the rest share what is
  left; the shares of the files certified within the budget pass to the files still open, in proportion. The
  error is spent where a file is likely to be handed out, a ``--search`` grid of dozens of files does not starve
  the one that will be chosen, and files that certify easily (exports, float16) do not dilute the others.

**Labelled bound** (:func:`paired_upper`). Of ``n`` certification images, ``lost`` are right for the reference and
wrong for the file, ``gained`` the other way round; the drop is p_lost − p_gained. The exact Clopper–Pearson upper
bound of p_lost minus the lower bound of p_gained, each at half the error, bounds it exactly at the stated level:
another lost image never lowers it, another gained image never raises it, and a file that gains far more than it
loses is credited. A file whose selection images show it reshuffling which images it gets right (losing about as
often as it gains, as a fine-tuned model does) is bounded instead by :func:`discordant_upper`: the exact bounds of
the share of images whose correctness changed and of the share of lost among them; which of the two,
:func:`reshuffles` decides on the selection images before certification.

**Unlabelled bound** (:func:`signed_disagreement_upper`). A step that trains nothing (conversion, post-training
quantization: the stages whose output is checked against its parent) loses an image only by changing its
prediction, so for a file F made from the reference by such steps, drop(F) ≤ p_changed · (2·s − 1), with s the
share of lost among the labelled images whose correctness changed. p_changed is bounded exactly on many images no
step trained or calibrated on and no choice looked at: the dataset's unused training pool or ``--unlabeled-dir``.
The training images are *not* valid even though the quantizer never saw them: the model fits them with wide
margins, so fewer predictions flip there than on new images; calibration images set the quantization ranges, so
the same holds for them. A file made from another trained model (pruned, then quantized) is certified on the
labelled images, as is any file when there are no more unlabelled than labelled images: the choice depends on how
the file was made and on image counts, never on its results.

**Size and speed** (:mod:`edgekit.rules.baseline`): a chosen file must be smaller than the fp32 file of its format
and not slower than it at batch 1. **Worse than the parent** (:mod:`edgekit.rules.parents`): larger, slower or, outside
the budget, less accurate than the model a file should improve on is flagged; within the budget it is a note.
**Parity** (:mod:`edgekit.rules.parity`): how closely an exported or quantized file must follow its parent.
**Fit** (:mod:`edgekit.rules.fit`): whether a model's measured arena and bytes fit a microcontroller's RAM and flash.

The chooser (:mod:`edgekit.search`), the budgeted stages (:mod:`edgekit.compression.budget`) and the reports'
flags (:mod:`edgekit.report.regressions`) all call these modules; nothing here imports them or the reports.
"""

from __future__ import annotations

from edgekit.rules.baseline import (
                                    SPEED_CHECKS,
                                    Row,
                                    SpeedCheck,
                                    Tolerance,
                                    baseline_exclusion,
                                    batch1_p50,
                                    batch1_pair,
                                    budget_note,
                                    checked_pair,
                                    common_threads,
                                    recorded_speed_checks,
                                    slower,
)
from edgekit.rules.bounds import (
                                    CONFIDENCE,
                                    SELECTION_CONFIDENCE,
                                    Certificate,
                                    certify,
                                    discordant_upper,
                                    margin,
                                    nothing_certified,
                                    paired_upper,
                                    per_bound_alpha,
                                    predicted_bound_pp,
                                    preference_shares,
                                    reshuffles,
                                    signed_disagreement_upper,
                                    smallest_budget_pp,
                                    upper_rate,
                                    verdict,
                                    within_budget,
)

__all__ = ["CONFIDENCE", "SELECTION_CONFIDENCE", "SPEED_CHECKS", "Certificate", "Row", "SpeedCheck", "Tolerance",
           "baseline_exclusion", "batch1_p50", "batch1_pair", "budget_note", "certify", "checked_pair",
           "common_threads", "discordant_upper", "margin", "nothing_certified", "paired_upper", "per_bound_alpha",
           "predicted_bound_pp", "preference_shares", "recorded_speed_checks", "reshuffles",
           "signed_disagreement_upper", "slower", "smallest_budget_pp", "upper_rate", "verdict", "within_budget"]
